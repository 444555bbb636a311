"""Identity endpoints with the official smartcar SDK: get_user, get_vehicles with paging, permissions, disconnect,
and Smartcar-shaped AUTHENTICATION and VALIDATION errors."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
import smartcar

from tests.http.oauth.conftest import OAuthWorld

AUTHENTICATION_DOC = "https://smartcar.com/docs/errors/api-errors/authentication-errors#null"


def assert_authentication(error: smartcar.SmartcarException) -> None:
    """Smartcar's AUTHENTICATION 401, every field the SDK parses."""
    assert (error.status_code, error.type, error.code) == (401, "AUTHENTICATION", None)
    assert error.description.startswith("The authorization header is missing or malformed")
    assert error.doc_url == AUTHENTICATION_DOC
    assert error.resolution == {"type": None, "url": None}
    assert uuid.UUID(error.request_id)
    assert error.message.startswith("AUTHENTICATION - The authorization header")


async def test_get_user(world: OAuthWorld) -> None:
    """get_user returns the token's user id, with meta from the sc-request-id header."""
    access = await world.user_access("user-1", "veh-a")
    user = smartcar.get_user(access.access_token)
    assert user.id == "user-1"
    assert uuid.UUID(user.meta.request_id)


async def test_get_vehicles_lists_the_users_active_connections_with_the_app(world: OAuthWorld) -> None:
    """Only this user's active connections with this app are listed, in a stable order, count the total."""
    access = await world.user_access("user-1", "veh-c", "veh-a", "veh-b", "veh-gone")
    await world.connect_vehicle("user-2", "veh-other-user")
    await world.connect_vehicle("user-1", "veh-other-app", app_id=world.other_app.app.id)
    await world.connect_vehicle(None, "veh-cli")
    gone = await world.registry.redis.hget(world.keys.user_connections(world.client_id, "user-1"), "veh-gone")
    assert isinstance(gone, bytes)
    await world.connect.revoke(gone.decode())
    listed = smartcar.get_vehicles(access.access_token)
    assert listed.vehicles == ["veh-a", "veh-b", "veh-c"]
    assert (listed.paging.count, listed.paging.offset) == (3, 0)
    assert uuid.UUID(listed.meta.request_id)


async def test_get_vehicles_paging(world: OAuthWorld) -> None:
    """limit and offset page through the vehicles; paging.count stays the total."""
    access = await world.user_access("user-1", *[f"veh-{i}" for i in range(5)])
    pages = [smartcar.get_vehicles(access.access_token, {"limit": 2, "offset": o}) for o in (0, 2, 4, 6)]
    assert [p.vehicles for p in pages] == [["veh-0", "veh-1"], ["veh-2", "veh-3"], ["veh-4"], []]
    assert [(p.paging.count, p.paging.offset) for p in pages] == [(5, 0), (5, 2), (5, 4), (5, 6)]


@pytest.mark.parametrize("paging", [{"limit": 51}, {"limit": 0}, {"offset": -1}, {"limit": "ten"}])
async def test_bad_paging_is_validation_400(world: OAuthWorld, paging: dict[str, object]) -> None:
    """A limit outside 1-50, a negative offset or a non-integer is Smartcar's VALIDATION 400."""
    access = await world.user_access("user-1", "veh-a")
    with pytest.raises(smartcar.SmartcarException) as caught:
        smartcar.get_vehicles(access.access_token, paging)
    assert (caught.value.status_code, caught.value.type, caught.value.code) == (400, "VALIDATION", "PARAMETER")
    with pytest.raises(smartcar.SmartcarException) as caught:
        smartcar.Vehicle("veh-a", access.access_token).permissions(paging)
    assert (caught.value.status_code, caught.value.type) == (400, "VALIDATION")


async def test_permissions_and_their_paging(world: OAuthWorld) -> None:
    """permissions() lists the connection's granted permission names; paging limits them, count the total."""
    access = await world.user_access("user-1", "veh-a")
    vehicle = smartcar.Vehicle("veh-a", access.access_token)
    everything = vehicle.permissions()
    assert sorted(everything.permissions) == ["read_battery", "read_odometer", "read_vin"]
    assert (everything.paging.count, everything.paging.offset) == (3, 0)
    page = vehicle.permissions({"limit": 1, "offset": 1})
    assert page.permissions == everything.permissions[1:2]
    assert (page.paging.count, page.paging.offset) == (3, 1)


async def test_disconnect_revokes_with_its_event_and_the_vehicle_is_gone(world: OAuthWorld) -> None:
    """disconnect() answers success, writes connection.revoked, and the vehicle leaves get_vehicles; the token
    keeps working while the user has another vehicle connected."""
    access = await world.user_access("user-1", "veh-a", "veh-b")
    assert smartcar.Vehicle("veh-a", access.access_token).disconnect().status == "success"
    assert smartcar.get_vehicles(access.access_token).vehicles == ["veh-b"]
    last = (await world.events())[-1]
    assert (last["type"], last["vehicle_id"], last["user_id"], last["app_id"]) == (
        "connection.revoked",
        "veh-a",
        "user-1",
        world.client_id,
    )
    with pytest.raises(smartcar.SmartcarException) as caught:
        smartcar.Vehicle("veh-a", access.access_token).permissions()
    assert_authentication(caught.value)


async def test_disconnecting_the_last_vehicle_revokes_the_users_tokens(world: OAuthWorld) -> None:
    """fleetgate's choice: with no connection left to the app, the user's access and refresh tokens are revoked."""
    access = await world.user_access("user-1", "veh-a")
    smartcar.Vehicle("veh-a", access.access_token).disconnect()
    with pytest.raises(smartcar.SmartcarException) as caught:
        smartcar.get_user(access.access_token)
    assert_authentication(caught.value)
    with pytest.raises(smartcar.SmartcarException) as caught:
        world.auth_client().exchange_refresh_token(access.refresh_token)
    assert (caught.value.status_code, caught.value.type) == (400, "invalid_grant")


@pytest.mark.parametrize("http_settings", [{"access_token_ttl_s": 1}], indirect=True)
async def test_expired_token_is_authentication_401(world: OAuthWorld) -> None:
    """An access token past its lifetime is Smartcar's AUTHENTICATION 401; expires_in says the lifetime."""
    access = await world.user_access("user-1", "veh-a")
    assert access.expires_in == 1
    time.sleep(1.3)
    with pytest.raises(smartcar.SmartcarException) as caught:
        smartcar.get_vehicles(access.access_token)
    assert_authentication(caught.value)


@pytest.mark.parametrize("token", ["", "not-a-token", "Basic abc"])
async def test_missing_or_unknown_token_is_authentication_401(world: OAuthWorld, token: str) -> None:
    """A missing, unknown or wrong-scheme credential is AUTHENTICATION 401 on every identity endpoint."""
    headers = {"Authorization": token if token.startswith("Basic") else f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=world.base_url, headers=headers) as http:
        responses = [
            await http.get("/v2.0/user"),
            await http.get("/v2.0/vehicles"),
            await http.get("/v2.0/vehicles/veh-a/permissions"),
            await http.delete("/v2.0/vehicles/veh-a/application"),
        ]
    for response in responses:
        body = response.json()
        assert (response.status_code, body["type"], body["statusCode"]) == (401, "AUTHENTICATION", 401)
        assert body["requestId"] == response.headers["sc-request-id"]
    with pytest.raises(smartcar.SmartcarException) as caught:
        smartcar.get_user(token or "x")
    assert_authentication(caught.value)
