"""Security of the token, identity and management endpoints: each test fails if its check were removed.

A token reaches only its own user's connections with its own app; a management token only its app's; secrets,
codes and tokens never reach the log or an error body (but Smartcar's `Invalid code: X.` echo, to the client that
sent X); the token endpoint is rate limited."""

from __future__ import annotations

import logging

import httpx
import pytest
import smartcar

from schemas.connection import ConnectionStatus
from tests.http.oauth.conftest import REDIRECT_URI, OAuthWorld
from tests.http.oauth.test_sdk_identity import assert_authentication


async def test_a_token_reaches_only_its_users_vehicles(world: OAuthWorld) -> None:
    """Another user's vehicle id is AUTHENTICATION 401 for permissions and disconnect, and stays connected."""
    mine = await world.user_access("user-1", "veh-a")
    theirs = await world.connect_vehicle("user-2", "veh-b")
    for method in ("permissions", "disconnect"):
        with pytest.raises(smartcar.SmartcarException) as caught:
            getattr(smartcar.Vehicle("veh-b", mine.access_token), method)()
        assert_authentication(caught.value)
    assert (await world.registry.connection(theirs.id)).status is ConnectionStatus.ACTIVE
    assert smartcar.get_vehicles(mine.access_token).vehicles == ["veh-a"]


async def test_a_token_reaches_only_its_apps_connections(world: OAuthWorld) -> None:
    """The same user's connection with another app is AUTHENTICATION 401, like an unknown vehicle id."""
    mine = await world.user_access("user-1", "veh-a")
    foreign = await world.connect_vehicle("user-1", "veh-b", app_id=world.other_app.app.id)
    for vehicle_id in ("veh-b", "veh-unknown"):
        for method in ("permissions", "disconnect"):
            with pytest.raises(smartcar.SmartcarException) as caught:
                getattr(smartcar.Vehicle(vehicle_id, mine.access_token), method)()
            assert_authentication(caught.value)
    assert (await world.registry.connection(foreign.id)).status is ConnectionStatus.ACTIVE


async def test_a_management_token_sees_and_deletes_only_its_apps_connections(world: OAuthWorld) -> None:
    """One vehicle connected to two apps: each app's token lists and deletes only its own connection."""
    await world.connect_vehicle("user-1", "veh-a")
    theirs = await world.connect_vehicle("user-1", "veh-a", app_id=world.other_app.app.id)
    await world.connect_vehicle("user-9", "veh-z", app_id=world.other_app.app.id)
    assert [c.vehicle_id for c in smartcar.get_connections(world.amt).connections] == ["veh-a"]
    assert smartcar.get_connections(world.amt, {"user_id": "user-9"}).connections == []
    deleted = smartcar.delete_connections(world.amt, {"vehicle_id": "veh-a"})
    assert len(deleted.connections) == 1
    assert smartcar.delete_connections(world.amt, {"user_id": "user-9"}).connections == []
    assert (await world.registry.connection(theirs.id)).status is ConnectionStatus.ACTIVE
    other_listing = smartcar.get_connections(world.other_app.management_token).connections
    assert sorted(c.vehicle_id for c in other_listing) == ["veh-a", "veh-z"]


async def test_secrets_codes_and_tokens_never_logged_nor_in_error_bodies(
    world: OAuthWorld, caplog: pytest.LogCaptureFixture
) -> None:
    """Every endpoint, successes and error paths, with logging at DEBUG: no secret, management token, code or
    token in any log record; no secret or token in an error body (a rejected code is echoed, as Smartcar does)."""
    caplog.set_level(logging.DEBUG)
    access = await world.user_access("user-1", "veh-a", "veh-b")
    code = await world.code("user-1")
    secrets = [world.secret, world.amt, world.other_app.client_secret, world.other_app.management_token, code]
    secrets += [access.access_token, access.refresh_token]
    bodies: list[str] = []
    async with httpx.AsyncClient(base_url=world.base_url) as http:
        token_calls = [
            ({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}, world.secret),
            ({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}, world.secret),
            ({"grant_type": "refresh_token", "refresh_token": access.refresh_token}, world.secret),
            ({"grant_type": "refresh_token", "refresh_token": access.refresh_token}, world.other_app.client_secret),
            ({"grant_type": "client_credentials"}, world.secret),
        ]
        for form, secret in token_calls:
            response = await http.post("/oauth/token", data=form, auth=(world.client_id, secret))
            if response.status_code == 200:
                secrets += [v for k, v in response.json().items() if k.endswith("token")]
            else:
                bodies.append(response.text.replace(f"Invalid code: {code}.", "Invalid code: <echo>."))
        bearer = {"Authorization": f"Bearer {access.access_token}"}
        wrong_bearer = {"Authorization": f"Bearer {world.secret}"}
        for headers in (bearer, wrong_bearer):
            for path in ("/v2.0/user", "/v2.0/vehicles?limit=99", "/v2.0/vehicles/veh-x/permissions"):
                response = await http.get(path, headers=headers)
                if response.status_code >= 400:
                    bodies.append(response.text)
        bodies.append((await http.delete("/v2.0/vehicles/veh-x/application", headers=bearer)).text)
        for amt in (world.amt, world.secret):
            for method in ("GET", "DELETE"):
                response = await http.request(method, "/v2.0/management/connections/", auth=("default", amt))
                if response.status_code >= 400:
                    bodies.append(response.text)
    assert smartcar.Vehicle("veh-a", access.access_token).disconnect().status == "success"
    assert len(bodies) >= 10
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert caplog.records  # the endpoints do log: the check below looks at something
    for secret in secrets:
        assert secret not in logged
        for body in bodies:
            assert secret not in body


@pytest.mark.parametrize("http_settings", [{"token_rate_limit": 3}], indirect=True)
async def test_token_endpoint_rate_limit_answers_429(world: OAuthWorld) -> None:
    """Past FLEETGATE_TOKEN_RATE_LIMIT calls a minute per client and IP: Smartcar's RATE_LIMIT 429 with
    retry-after (wrong secrets count too); another client is not limited by it."""
    form = {"grant_type": "refresh_token", "refresh_token": "guess"}
    async with httpx.AsyncClient(base_url=world.base_url) as http:
        answers = [(await http.post("/oauth/token", data=form, auth=(world.client_id, f"guess-{i}"))) for i in range(3)]
        limited = await http.post("/oauth/token", data=form, auth=(world.client_id, world.secret))
        other = await http.post("/oauth/token", data=form, auth=(world.other_app.app.id, world.other_app.client_secret))
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert limited.status_code == 429
    assert (limited.json()["type"], limited.json()["code"]) == ("RATE_LIMIT", "SMARTCAR_API")
    assert 1 <= int(limited.headers["retry-after"]) <= 61
    assert other.status_code == 400
    with pytest.raises(smartcar.SmartcarException) as caught:
        world.auth_client().exchange_refresh_token("guess")
    assert (caught.value.status_code, caught.value.type) == (429, "RATE_LIMIT")
    assert int(caught.value.retry_after) >= 1
