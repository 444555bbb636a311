"""The dashboard over HTTP (in-process, real redis-server): sign-in, sessions, the app boundary, CSRF, the
Vehicle Access editor's derive fragment and Save."""

from __future__ import annotations

import re

import httpx
from redis.asyncio import Redis

from devtools.builders import make_vehicle
from schemas.access import VehicleAccessConfig
from schemas.powertrain import Powertrain
from services.http import HttpContext, create_app
from services.http.dashboard.session import COOKIE, SessionSecret
from services.registry import ConnectService, Registry
from services.settings import Settings
from simulator.accounts import SimulatorAccounts
from tests.http.dashboard.conftest import ORIGIN, Dash, new_app

ODOMETER = "odometer-traveleddistance"
LOCATION = "location-preciselocation"


async def test_unauthenticated_page_redirects_to_sign_in(dash: Dash) -> None:
    """A page without a session answers 303 to the sign-in page."""
    response = await dash.http.get(f"{dash.base}/access")
    assert (response.status_code, response.headers["location"]) == (303, "/dashboard/login")


async def test_good_token_signs_in_with_a_cookie_that_never_holds_the_token(dash: Dash) -> None:
    """The management token signs in; the session cookie is HttpOnly, SameSite=Lax, Path=/dashboard and carries
    neither the token nor its hash."""
    response = await dash.sign_in()
    assert (response.status_code, response.headers["location"]) == (303, f"{dash.base}/access")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/dashboard" in cookie
    token = dash.created.management_token
    assert token not in cookie
    assert token[:8] not in cookie
    page = await dash.http.get(f"{dash.base}/access")
    assert page.status_code == 200
    assert 'id="app-name"' in page.text
    assert token not in page.text
    assert token[-4:] not in page.text


async def test_dashboard_root_leads_to_the_apps_editor(signed: Dash) -> None:
    """`/dashboard` sends a signed-in session to its app's Vehicle Access page."""
    response = await signed.http.get("/dashboard")
    assert (response.status_code, response.headers["location"]) == (303, f"{signed.base}/access")


async def test_unknown_dashboard_paths_answer_the_dashboards_404(signed: Dash) -> None:
    """A dashboard path that names no page answers the dashboard's 404 page (HTML), the app's base its editor."""
    for path in ("/dashboard/nothing", f"{signed.base}/nothing", f"{signed.base}/access/versions/diff?old=a"):
        response = await signed.http.get(path)
        assert response.status_code == 404, path
        assert 'id="problem"' in response.text
    assert (await signed.http.get(signed.base)).headers["location"] == f"{signed.base}/access"


async def test_bad_token_is_refused(dash: Dash) -> None:
    """A string that is no app's management token answers 401 with the sign-in page and no cookie."""
    response = await dash.http.post("/dashboard/login", data={"token": "not-a-token"})
    assert response.status_code == 401
    assert 'id="login-error"' in response.text
    assert "set-cookie" not in response.headers
    assert (await dash.http.get(f"{dash.base}/access")).status_code == 303


async def test_forged_cookie_is_not_a_session(dash: Dash) -> None:
    """A cookie naming the app with a made-up signature does not sign anybody in."""
    dash.http.cookies.set(COOKIE, f"{dash.app_id}.99999999999.abc.forged", path="/dashboard")
    assert (await dash.http.get(f"{dash.base}/access")).status_code == 303


async def test_another_apps_url_answers_404(signed: Dash) -> None:
    """A session sees only its own app: another app's pages, existing or not, answer 404."""
    other = await new_app(signed.registry, "Other")
    for app_id in (other.app.id, "no-such-app"):
        response = await signed.http.get(f"/dashboard/apps/{app_id}/access")
        assert response.status_code == 404, app_id
        assert "Other" not in response.text


async def test_save_without_csrf_is_refused(signed: Dash) -> None:
    """A Save without the session's CSRF token answers 403 and publishes nothing."""
    for token in (None, "wrong"):
        data = {"signal": ODOMETER, "action": "save"} | ({} if token is None else {"csrf": token})
        response = await signed.http.post(f"{signed.base}/access", data=data)
        assert response.status_code == 403
    assert await signed.registry.config_versions(signed.app_id) == []


async def test_logout_needs_csrf_and_ends_the_session(signed: Dash) -> None:
    """Sign-out without the token is refused; with it the cookie is cleared and pages redirect to sign-in."""
    assert (await signed.http.post("/dashboard/logout")).status_code == 403
    response = await signed.http.post("/dashboard/logout", data={"csrf": await signed.csrf()})
    assert response.status_code == 303
    assert (await signed.http.get(f"{signed.base}/access")).status_code == 303


async def test_derive_fragment_marks_required_and_renders_the_scope(signed: Dash) -> None:
    """The derive endpoint answers the panel for the posted selection: required ones marked, the scope string as
    schemas/scope.py renders it."""
    data = {"signal": [ODOMETER, LOCATION], "required": [ODOMETER, "lock"]}
    response = await signed.http.post(f"{signed.base}/access/derive", data=data)
    assert response.status_code == 200
    html = response.text
    assert re.search(r'id="perm-read_odometer" data-required="true"', html)
    assert re.search(r'id="perm-read_location" data-required="false"', html)
    scope = re.search(r'<output id="scope-string"[^>]*>([^<]*)</output>', html)
    assert scope
    assert scope.group(1) == "read_location required:read_odometer"
    assert "<html" not in html  # a fragment, not a page


async def test_derive_fragment_names_an_unknown_signal(signed: Dash) -> None:
    """An unknown code is reported in the panel, not a crash."""
    response = await signed.http.post(f"{signed.base}/access/derive", data={"signal": "odometer-nope"})
    assert response.status_code == 200
    assert 'id="derive-error"' in response.text
    assert "odometer-nope" in response.text


async def test_save_publishes_the_next_version_and_counts_affected_connections(signed: Dash) -> None:
    """Save publishes version N+1 through the registry and the page says how many active connections lack what
    it asks for (they keep their grants until re-authentication)."""
    registry = signed.registry
    await registry.publish_config(VehicleAccessConfig.select(signals=[ODOMETER]), signed.app_id)
    await registry.add_vehicle(make_vehicle(Powertrain.BEV, vehicle_id="v1"))
    await registry.add_vehicle(make_vehicle(Powertrain.BEV, vehicle_id="v2"))
    connect = ConnectService(registry)
    await connect.authorize("v1", app_id=signed.app_id)
    await connect.authorize("v2", scope="read_odometer read_location", app_id=signed.app_id)
    data = {"csrf": await signed.csrf(), "signal": [ODOMETER, LOCATION], "required": LOCATION, "action": "save"}
    response = await signed.http.post(f"{signed.base}/access", data=data)
    assert (response.status_code, response.headers["location"]) == (303, f"{signed.base}/access?saved=2")
    config = await registry.config(app_id=signed.app_id)
    assert config.version == 2
    assert [(s.code, s.required) for s in config.signals] == [(ODOMETER, False), (LOCATION, True)]
    page = await signed.http.get(response.headers["location"])
    assert "Saved as version 2." in page.text
    assert re.search(r'id="affected-count">1</span> of 2 active', page.text)


async def test_save_of_nothing_is_refused_with_a_message(signed: Dash) -> None:
    """Saving an empty selection publishes nothing and says why (400)."""
    response = await signed.http.post(f"{signed.base}/access", data={"csrf": await signed.csrf(), "action": "save"})
    assert response.status_code == 400
    assert 'id="save-error"' in response.text
    assert await signed.registry.config_versions(signed.app_id) == []


async def test_editor_preselects_the_published_config(signed: Dash) -> None:
    """The editor ticks the current version's selections and their Required toggles."""
    config = VehicleAccessConfig.select(signals=[ODOMETER], commands=["lock"], required=["lock"])
    await signed.registry.publish_config(config, signed.app_id)
    html = (await signed.http.get(f"{signed.base}/access")).text
    assert re.search(rf'id="select-{ODOMETER}"\s+checked', html)
    assert re.search(r'id="select-lock"\s+checked', html)
    assert re.search(r'id="required-lock"\s+checked', html)
    assert not re.search(rf'id="required-{ODOMETER}"\s+checked', html)
    assert not re.search(rf'id="select-{LOCATION}"\s+checked', html)


async def test_recompute_without_javascript_rerenders_the_selection(signed: Dash) -> None:
    """The no-JavaScript path: Recompute shows the posted selection's permissions, and publishes nothing."""
    data = {"csrf": await signed.csrf(), "signal": LOCATION, "action": "recompute"}
    response = await signed.http.post(f"{signed.base}/access", data=data)
    assert response.status_code == 200
    assert 'id="perm-read_location"' in response.text
    assert await signed.registry.config_versions(signed.app_id) == []


async def test_session_secret_is_made_once_and_shared(redis: Redis, registry: Registry) -> None:
    """Without the setting, every process reads the one secret the first made (SET NX); the setting wins."""
    first = SessionSecret(redis, registry.keys, None)
    second = SessionSecret(redis, registry.keys, None)
    assert await first.get() == await second.get()
    assert len(await first.get()) >= 32
    configured = "c" * 40
    assert await SessionSecret(redis, registry.keys, configured).get() == configured.encode()


async def test_a_session_outlives_a_restart(signed: Dash) -> None:
    """A new app on the same Redis (another `fleetgate serve`, or a restart) accepts the session."""
    settings = Settings(key_prefix=signed.registry.keys.prefix)
    redis = signed.registry.redis
    other = create_app(HttpContext(settings, redis, signed.registry, SimulatorAccounts(signed.registry)))
    transport = httpx.ASGITransport(app=other)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN, cookies=signed.http.cookies) as http:
        assert (await http.get(f"{signed.base}/access")).status_code == 200
