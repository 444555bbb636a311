"""Connect over HTTP, in-process (httpx.ASGITransport) on the test's redis-server: every screen, every refusal.

A refusal before the redirect URI is known good is an error page, never a redirect; after it, Smartcar's error
redirect with its exact strings. A refused grant form writes nothing (no connection, no connection event).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.builders import make_vehicle
from schemas.access import VehicleAccessConfig
from schemas.application import AppMode
from schemas.grant import ConnectionFilters, FilterPowertrain
from schemas.powertrain import Powertrain
from services.keyspace import Keys
from services.local_redis import RedisServer
from services.redis_client import Client
from simulator.accounts import OwnerAccount, owner_email, store_owners
from simulator.connect_test_mode import user_id
from tests.http.connect_flow import REDIRECT_URI, Harness, harness, query, vehicle_ids

SCOPE = "required:read_vehicle_info read_odometer read_location"
LOGIN_LIMIT = 5


@pytest.fixture
async def h(redis: Client, keys: Keys, redis_server: RedisServer) -> AsyncIterator[Harness]:
    async with harness(redis, keys, redis_server.url, login_rate_limit=LOGIN_LIMIT) as made:
        yield made


def assert_page(response: httpx.Response, status: int = 400) -> str:
    """An HTML page, not a redirect; its text."""
    assert response.status_code == status, response.text
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def assert_redirect(response: httpx.Response, uri: str = REDIRECT_URI) -> dict[str, str]:
    """A 302 to the registered redirect URI; its query."""
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.split("?")[0] == uri.split("?", maxsplit=1)[0]
    return query(location)


async def test_the_whole_flow_ends_in_code_and_state(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    """authorize → preamble → brand → login → grant → 302 with code and state (the redirect URI's own query kept);
    the connection holds the required and the optional left checked, not the unchecked one; the code redeems and
    appears nowhere but in the Location (no log line, no page)."""
    caplog.set_level(logging.DEBUG)
    other = "https://app.example/other?tenant=7"
    flow, nonce, html = await h.to_grant(scope=SCOPE, state="s 1&x=ü", redirect_uri=other)
    assert 'value="read_vehicle_info" checked' in html
    (vehicle,) = vehicle_ids(html)
    response = await h.post_grant(flow, nonce, vehicles=[vehicle], permissions=["read_odometer"])
    params = assert_redirect(response, other)
    assert set(params) == {"tenant", "code", "state"}
    assert (params["tenant"], params["state"]) == ("7", "s 1&x=ü")
    assert params["code"] not in caplog.text
    assert params["code"] not in response.text
    (connection,) = await h.registry.user_connections(h.app.id, user_id("someone@example.com"))
    assert sorted(connection.permissions) == ["read_odometer", "read_vehicle_info"]
    assert connection.permissions.required_names == ["read_vehicle_info"]
    assert connection.scope == "read_location read_odometer required:read_vehicle_info"
    assert await h.context.tokens.redeem_code(params["code"], h.app.id, other) is not None
    # The same form again (a replay after approval): refused, nothing more written.
    events = await h.events()
    replay = await h.post_grant(flow, nonce, vehicles=[vehicle], permissions=["read_odometer"])
    assert "Connect has ended" in assert_page(replay)
    assert await h.events() == events


async def test_scope_absent_requests_the_apps_config(h: Harness) -> None:
    """Without `scope` the app's current Vehicle Access config is requested; the connection records its version."""
    config = VehicleAccessConfig.select(signals=["odometer-traveleddistance"], commands=["unlock"], required=["unlock"])
    published = await h.registry.publish_config(config, app_id=h.app.id)
    flow, nonce, html = await h.to_grant()
    assert 'value="control_security" checked' in html
    response = await h.post_grant(flow, nonce, vehicles=vehicle_ids(html), permissions=[])
    assert "code" in assert_redirect(response)
    (connection,) = await h.registry.user_connections(h.app.id, user_id("someone@example.com"))
    assert (connection.scope, connection.config_version) == (None, published.version)
    assert list(connection.permissions) == ["control_security"]


async def test_unknown_client_is_a_page_never_a_redirect(h: Harness) -> None:
    """An unknown client (or none) gets a page; so does the default app, which has no redirect URI."""
    for client_id in ("nope", "", "../x", "a" * 500):
        response = await h.http.get("/oauth/authorize", params=h.params(client_id=client_id, scope=SCOPE))
        assert "Unknown client_id" in assert_page(response)
    assert "Unknown client_id" in assert_page(await h.http.get("/oauth/authorize"))
    response = await h.http.get("/oauth/authorize", params=h.params(client_id="default", scope=SCOPE))
    assert "no redirect URI registered" in assert_page(response)


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://app.example/cb.evil.com",
        "https://app.example/cb/../x",
        "https://APP.example/cb",
        "https://app.example/CB",
        "https://app.example/cb/",
        "https://app.example/cb?x=1",
        "https://app.example/cb#frag",
        "http://app.example/cb",
        "https://app.example.evil.com/cb",
        "https://evil.com/?https://app.example/cb",
        "//evil.com",
        " https://app.example/cb",
    ],
)
async def test_an_unregistered_redirect_uri_is_a_page(h: Harness, redirect_uri: str) -> None:
    """Only an exact registered URI is redirected to: prefix, path, case and scheme tricks get a page."""
    response = await h.http.get("/oauth/authorize", params=h.params(redirect_uri=redirect_uri, scope=SCOPE))
    assert "redirect_uri is not one registered" in assert_page(response)


async def test_no_redirect_uri_registered_or_a_wrong_response_type_is_a_page(h: Harness) -> None:
    bare = (await h.context.apps.create("Bare", [], AppMode.TEST)).app
    response = await h.http.get("/oauth/authorize", params={"response_type": "code", "client_id": bare.id})
    assert "no redirect URI registered" in assert_page(response)
    response = await h.http.get("/oauth/authorize", params=h.params(response_type="token", scope=SCOPE))
    assert "response_type must be code" in assert_page(response)
    response = await h.http.get("/oauth/authorize", params=[*h.params(scope=SCOPE).items(), ("redirect_uri", "x")])
    assert "more than once" in assert_page(response)


async def test_the_first_registered_uri_when_none_is_named(h: Harness) -> None:
    params = {"response_type": "code", "client_id": h.app.id, "scope": SCOPE}
    response = await h.http.get("/oauth/authorize", params=params)
    assert response.status_code == 303
    flow = query(response.headers["location"])["flow"]
    await h.http.post("/oauth/connect/preamble", data={"flow": flow})
    response = await h.http.get("/oauth/connect/back", params={"flow": flow})
    assert assert_redirect(response)["error"] == "user_manually_returned_to_application"


async def test_a_bad_scope_is_a_400_page_naming_the_token(h: Harness) -> None:
    response = await h.http.get("/oauth/authorize", params=h.params(scope="read_vehicle_info read_odomoter"))
    text = assert_page(response)
    assert "400: unknown permission &#39;read_odomoter&#39;" in text
    response = await h.http.get("/oauth/authorize", params=h.params(scope="required:"))
    assert "&#39;required:&#39;" in assert_page(response)
    # No scope and no published config: nothing to request.
    assert "requests no permission" in assert_page(await h.http.get("/oauth/authorize", params=h.params()))


async def test_a_permission_the_app_may_not_request_is_smartcars_400_page(h: Harness) -> None:
    """An app restricted to some permissions gets Smartcar's page naming each other one it asks for, and no flow
    starts; within its permissions the flow starts."""
    restricted = await h.context.apps.create(
        "Narrow", [REDIRECT_URI], AppMode.TEST, permissions=["read_odometer", "read_vin"]
    )
    params = h.params(scope="read_odometer control_trunk required:control_security") | {"client_id": restricted.app.id}
    text = assert_page(await h.http.get("/oauth/authorize", params=params))
    assert "400: Application not authorized to request permission(s): control_security, control_trunk" in text
    params = h.params(scope="required:read_odometer read_vin") | {"client_id": restricted.app.id}
    assert (await h.http.get("/oauth/authorize", params=params)).status_code == 303


async def test_an_unknown_make_is_a_page_naming_it(h: Harness) -> None:
    response = await h.http.get("/oauth/authorize", params=h.params(scope=SCOPE, make="TRABANT"))
    assert "Unknown make: TRABANT" in assert_page(response)


async def test_forged_or_foreign_nonces_are_refused_and_write_nothing(h: Harness) -> None:
    """A made-up nonce, and another flow's form (its flow id with this one's nonce, and the reverse): refused."""
    flow_a, nonce_a, html_a = await h.to_grant(scope=SCOPE)
    flow_b, nonce_b, _ = await h.to_grant("other@example.com", scope=SCOPE)
    vehicles = vehicle_ids(html_a)
    for flow, nonce in ((flow_a, "forged"), (flow_a, nonce_b), (flow_b, nonce_a), (flow_a, "")):
        response = await h.post_grant(flow, nonce, vehicles=vehicles, permissions=[])
        assert "no longer valid" in assert_page(response)
    assert await h.events() == 0
    assert await h.registry.user_connections(h.app.id, user_id("someone@example.com")) == []


async def test_a_required_permission_posted_as_removed_is_still_granted(h: Harness) -> None:
    """Required boxes are disabled, so never posted: not posting one (or posting it) grants it all the same."""
    flow, nonce, html = await h.to_grant(scope=SCOPE)
    response = await h.post_grant(flow, nonce, vehicles=vehicle_ids(html), permissions=["read_location"])
    assert "code" in assert_redirect(response)
    (connection,) = await h.registry.user_connections(h.app.id, user_id("someone@example.com"))
    assert sorted(connection.permissions) == ["read_location", "read_vehicle_info"]


@pytest.mark.parametrize(
    ("vehicles", "permissions", "message"),
    [
        (None, ["control_trunk"], "not one the application requested"),
        (None, ["read_odometer", "read_charge"], "not one the application requested"),
        (["not-on-the-account"], ["read_odometer"], "not one this account can connect"),
        ([], ["read_odometer"], "Choose a vehicle"),
    ],
)
async def test_a_refused_approval_rerenders_the_grant_screen_and_writes_nothing(
    h: Harness, vehicles: list[str] | None, permissions: list[str], message: str
) -> None:
    flow, nonce, html = await h.to_grant(scope=SCOPE)
    chosen = vehicle_ids(html) if vehicles is None else vehicles
    response = await h.post_grant(flow, nonce, vehicles=chosen, permissions=permissions)
    text = assert_page(response)
    assert message in text
    assert 'id="grant-error"' in text
    assert await h.events() == 0
    # The re-rendered screen's new nonce works; the old one does not.
    new_nonce, _ = await h.grant_screen(flow)
    assert "no longer valid" in assert_page(await h.post_grant(flow, nonce, vehicles=chosen, permissions=[]))
    response = await h.post_grant(flow, new_nonce, vehicles=vehicle_ids(html), permissions=[])
    assert "code" in assert_redirect(response)


async def test_no_permission_left_is_refused(h: Harness) -> None:
    flow, nonce, html = await h.to_grant(scope="read_odometer read_location")
    response = await h.post_grant(flow, nonce, vehicles=vehicle_ids(html), permissions=[])
    assert "At least one permission must remain selected." in assert_page(response)
    assert await h.events() == 0


async def test_deny_is_access_denied(h: Harness) -> None:
    flow, nonce, html = await h.to_grant(scope=SCOPE, state="xyz")
    response = await h.post_grant(flow, nonce, vehicles=vehicle_ids(html), permissions=[], action="deny")
    assert assert_redirect(response) == {
        "error": "access_denied",
        "error_description": "User denied access to application.",
        "state": "xyz",
    }
    assert await h.events() == 0


async def test_a_filtered_out_powertrain_is_vehicle_incompatible(h: Harness) -> None:
    """BEV-only filters and the test-mode Chevrolet Volt (PHEV): vehicle_incompatible with make, model, year, VIN
    (fleetgate's choice of parameters: Smartcar does not document the filters' error)."""
    await h.registry.set_filters(ConnectionFilters(powertrains=frozenset({FilterPowertrain.BEV})), app_id=h.app.id)
    flow = await h.start(scope=SCOPE, state="st")
    params = assert_redirect(await h.sign_in(flow, "volt@example.com"))
    assert params["error"] == "vehicle_incompatible"
    assert params["error_description"] == "The user\u2019s vehicle is not compatible."
    assert (params["make"], params["model"], params["state"]) == ("Chevrolet", "Volt", "st")
    assert params["year"].isdigit()
    assert params["vin"].startswith("0SC")


@pytest.mark.parametrize(
    ("email", "error", "description"),
    [
        ("smartcar@invalid-subscription.com", "invalid_subscription", "User does not have an active connected "
         "vehicle subscription."),
        ("smartcar@vehicle-incompatible.com", "vehicle_incompatible", "The user\u2019s vehicle is not compatible."),
        ("0-vehicles@smartcar.com", "no_vehicles", "No vehicles found. Please add vehicles to your account and try "
         "again."),
    ],
)  # fmt: skip
async def test_test_mode_accounts_end_in_their_errors(h: Harness, email: str, error: str, description: str) -> None:
    flow = await h.start(scope=SCOPE)
    params = assert_redirect(await h.sign_in(flow, email))
    assert (params["error"], params["error_description"]) == (error, description)
    if error == "vehicle_incompatible":
        assert (params["make"], params["vin"]) == ("Audi", "0SCAUDI012FE3B132")
    else:
        assert "make" not in params


async def test_wrong_credentials_rerender_login_and_the_rate_limit_answers_429(h: Harness) -> None:
    flow = await h.start(scope=SCOPE, mode="live")  # live: the fleet owners, none stored here
    response = await h.sign_in(flow, "nobody@fleet.fleetgate.test", "wrong")
    assert "The email or password is incorrect." in assert_page(response, 401)
    for _ in range(LOGIN_LIMIT - 1):
        data = {"flow": flow, "username": "x@fleet.fleetgate.test", "password": "y"}
        assert (await h.http.post("/oauth/connect/login", data=data)).status_code == 401
    response = await h.http.post("/oauth/connect/login", data=data)
    assert "Too many sign-in attempts. Try again in" in assert_page(response, 429)
    assert 1 <= int(response.headers["retry-after"]) <= 60


async def test_deep_links_past_a_step_are_configuration_errors(h: Harness) -> None:
    flow = await h.start(scope=SCOPE, state="s")
    response = await h.http.get("/oauth/connect/grant", params={"flow": flow})
    params = assert_redirect(response)
    assert (params["error"], params["status_code"], params["state"]) == ("configuration_error", "400", "s")
    assert params["error_description"] == "There has been an error in the configuration of your application."
    assert params["error_message"]
    # The flow has ended: its screens are gone.
    assert "Connect has ended" in assert_page(await h.http.get("/oauth/connect/preamble", params={"flow": flow}))
    flow = await h.start(scope=SCOPE)
    data = {"flow": flow, "username": "a@b.c", "password": "p"}
    assert assert_redirect(await h.http.post("/oauth/connect/login", data=data))["error"] == "configuration_error"
    assert "expired or does not exist" in assert_page(await h.http.get("/oauth/connect/grant", params={"flow": "x"}))


async def test_a_test_vin_in_live_mode_is_a_configuration_error(h: Harness) -> None:
    response = await h.http.get(
        "/oauth/authorize", params=h.params(scope=SCOPE, mode="live", single_select_vin="0SCAUDI037A5ADB1C")
    )
    params = assert_redirect(response)
    assert params["error"] == "configuration_error"
    assert (
        params["error_message"]
        == "You have entered a test mode VIN. Please enter a VIN that belongs to a real vehicle."
    )


async def test_single_select_vin_shows_only_that_vin(h: Harness) -> None:
    vin = "0SCAUDI037A5ADB1C"
    flow = await h.start(scope=SCOPE, single_select_vin=vin)
    response = await h.sign_in(flow, f"{vin.lower()}@compatible.smartcar.com")
    assert response.status_code == 303
    _, html = await h.grant_screen(flow)
    assert len(vehicle_ids(html)) == 1
    assert 'type="radio"' in html
    flow = await h.start(scope=SCOPE, single_select_vin=vin)
    params = assert_redirect(await h.sign_in(flow, "3-vehicles@smartcar.com"))
    assert (params["error"], params["status_code"]) == ("configuration_error", "400")


async def test_single_select_takes_exactly_one_vehicle(h: Harness) -> None:
    flow, nonce, html = await h.to_grant("3-vehicles@smartcar.com", scope=SCOPE, single_select="true")
    vehicles = vehicle_ids(html)
    assert len(vehicles) == 3
    assert html.count('type="radio"') == 3
    response = await h.post_grant(flow, nonce, vehicles=vehicles[:2], permissions=[])
    assert "Choose exactly one vehicle." in assert_page(response)
    nonce, _ = await h.grant_screen(flow)
    assert "code" in assert_redirect(await h.post_grant(flow, nonce, vehicles=vehicles[1:2], permissions=[]))
    connections = await h.registry.user_connections(h.app.id, user_id("3-vehicles@smartcar.com"))
    assert [c.vehicle_id for c in connections] == [vehicles[1]]


async def test_no_brand_is_vehicle_incompatible_without_vehicle(h: Harness) -> None:
    flow = await h.start(scope=SCOPE)
    await h.http.post("/oauth/connect/preamble", data={"flow": flow})
    params = assert_redirect(await h.http.get("/oauth/connect/no-brand", params={"flow": flow}))
    assert params["error"] == "vehicle_incompatible"
    assert "make" not in params
    assert "vin" not in params


async def test_approval_prompt_auto_skips_the_grant_screen_once_granted(h: Harness) -> None:
    flow, nonce, html = await h.to_grant("2-vehicles@smartcar.com", scope=SCOPE)
    assert_redirect(await h.post_grant(flow, nonce, vehicles=vehicle_ids(html), permissions=["read_odometer"]))
    # read_location was unchecked: asked again.
    await h.to_grant("2-vehicles@smartcar.com", scope=SCOPE)
    # Everything requested is held by both vehicles: a code right after login.
    flow = await h.start(scope="required:read_vehicle_info read_odometer")
    assert "code" in assert_redirect(await h.sign_in(flow, "2-vehicles@smartcar.com"))
    flow = await h.start(scope="required:read_vehicle_info read_odometer", approval_prompt="force")
    assert (await h.sign_in(flow, "2-vehicles@smartcar.com")).status_code == 303


async def test_reauthentication_reauthorizes_and_returns_vehicle_id(h: Harness) -> None:
    flow, nonce, html = await h.to_grant(scope=SCOPE)
    (vehicle,) = vehicle_ids(html)
    assert_redirect(await h.post_grant(flow, nonce, vehicles=[vehicle], permissions=["read_odometer"]))
    params = {"response_type": "vehicle_id", "vehicle_id": vehicle, "state": "re", "scope": SCOPE}
    flow = await h.start("/oauth/reauthenticate", **params)
    response = await h.sign_in(flow, "someone@example.com")
    assert urlsplit(response.headers["location"]).path == "/oauth/connect/grant"
    nonce, html = await h.grant_screen(flow)
    assert vehicle_ids(html) == [vehicle]
    response = await h.post_grant(flow, nonce, vehicles=[vehicle], permissions=["read_location", "read_odometer"])
    assert assert_redirect(response) == {"vehicle_id": vehicle, "state": "re"}
    (connection,) = await h.registry.user_connections(h.app.id, user_id("someone@example.com"))
    assert sorted(connection.permissions) == ["read_location", "read_odometer", "read_vehicle_info"]
    assert await h.events() == 2
    # Another account (no connection for that vehicle): configuration_error.
    flow = await h.start("/oauth/reauthenticate", **params)
    assert assert_redirect(await h.sign_in(flow, "stranger@example.com"))["error"] == "configuration_error"


async def test_fleet_owners_sign_in_in_live_mode(redis: Client, keys: Keys, redis_server: RedisServer) -> None:
    """A live-mode app gets the simulated fleet's owners (password `fleetgate`); a vehicle its filters exclude is
    shown greyed and cannot be chosen, even by posting its id."""
    async with harness(redis, keys, redis_server.url, mode=AppMode.LIVE) as h:
        await h.registry.add_vehicle(make_vehicle(Powertrain.BEV, vehicle_id="fleet-1"))
        await h.registry.add_vehicle(make_vehicle(Powertrain.PHEV, vehicle_id="fleet-2"))
        filters = ConnectionFilters(powertrains=frozenset({FilterPowertrain.BEV}))
        await h.registry.set_filters(filters, app_id=h.app.id)
        email = owner_email(0)
        await store_owners(redis, keys, [OwnerAccount(email, user_id(email), ("fleet-1", "fleet-2"))])
        flow = await h.start(scope=SCOPE)
        assert (await h.sign_in(flow, email, "fleetgate", make="TESLA")).status_code == 303
        nonce, html = await h.grant_screen(flow)
        assert vehicle_ids(html) == ["fleet-1"]
        assert "Not compatible with Acme EV" in html
        response = await h.post_grant(flow, nonce, vehicles=["fleet-1", "fleet-2"], permissions=[])
        assert "not one this account can connect" in assert_page(response)
        nonce, _ = await h.grant_screen(flow)
        assert "code" in assert_redirect(await h.post_grant(flow, nonce, vehicles=["fleet-1"], permissions=[]))
        assert [c.vehicle_id for c in await h.registry.user_connections(h.app.id, user_id(email))] == ["fleet-1"]


async def test_an_unexpected_failure_after_validation_is_server_error(h: Harness) -> None:
    flow, nonce, html = await h.to_grant(scope=SCOPE, state="s")

    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    object.__setattr__(h.context.connect, "connect", broken)
    params = assert_redirect(await h.post_grant(flow, nonce, vehicles=vehicle_ids(html), permissions=[]))
    assert params == {
        "error": "server_error",
        "error_description": "Unexpected server error. Please try again.",
        "state": "s",
    }


async def test_an_unexpected_failure_while_validating_is_server_error_once_the_uri_is_known(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(h.context.registry, "config", broken)
    params = assert_redirect(await h.http.get("/oauth/authorize", params=h.params(state="s")))
    assert (params["error"], params["state"]) == ("server_error", "s")


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    client_id=st.one_of(st.none(), _TEXT, st.just("APP")),
    redirect_uri=st.one_of(
        st.none(), _TEXT, st.sampled_from([REDIRECT_URI, REDIRECT_URI + "x", "https://evil.example/cb", "//evil"])
    ),
    scope=st.one_of(st.none(), _TEXT, st.sampled_from([SCOPE, "required:", "read_odometer required:control_trunk"])),
    extra=st.dictionaries(
        st.sampled_from(
            ["state", "mode", "make", "single_select", "single_select_vin", "approval_prompt", "flags", "user", "x"]
        ),
        _TEXT,
        max_size=4,
    ),
    response_type=st.sampled_from(["code", "token", "", "vehicle_id"]),
)
async def test_fuzzed_authorize_requests_never_fail_or_redirect_elsewhere(
    h: Harness,
    client_id: str | None,
    redirect_uri: str | None,
    scope: str | None,
    extra: dict[str, str],
    response_type: str,
) -> None:
    """Whatever the parameters: no 500, and a redirect only to a registered URI or the flow's own screens."""
    params = {"response_type": response_type, **extra}
    if client_id is not None:
        params["client_id"] = h.app.id if client_id == "APP" else client_id
    if redirect_uri is not None:
        params["redirect_uri"] = redirect_uri
    if scope is not None:
        params["scope"] = scope
    for path in ("/oauth/authorize", "/oauth/reauthenticate"):
        response = await h.http.get(path, params=params)
        assert response.status_code in (302, 303, 400), (response.status_code, response.text)
        if response.status_code == 302:
            location = response.headers["location"]
            assert location.split("?")[0] in (REDIRECT_URI, "https://app.example/other"), location
        if response.status_code == 303:
            assert response.headers["location"].startswith("/oauth/connect/preamble?flow=")
