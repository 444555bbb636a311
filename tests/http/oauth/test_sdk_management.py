"""The management API with the official smartcar SDK: get_connections (newest first, cursor paging, filters) and
delete_connections, each revocation with its event and the tokens of users left without a connection."""

from __future__ import annotations

import base64

import httpx
import pytest
import smartcar

from tests.http.oauth.conftest import OAuthWorld
from tests.http.oauth.test_sdk_identity import assert_authentication


async def test_get_connections_newest_first_with_cursor_paging(world: OAuthWorld) -> None:
    """Every active connection of the app, newest first, paged by cursor; the last page's cursor is None."""
    made = [await world.connect_vehicle(f"user-{i % 2}", f"veh-{i}") for i in range(5)]
    pages = []
    cursor: str | None = None
    while True:
        paging: dict[str, object] = {"limit": 2} if cursor is None else {"limit": 2, "cursor": cursor}
        page = smartcar.get_connections(world.amt, None, paging)
        pages.append([(c.vehicle_id, c.user_id) for c in page.connections])
        cursor = page.paging.cursor
        if cursor is None:
            break
    expected = [(c.vehicle_id, c.user_id) for c in reversed(made)]
    assert pages == [expected[0:2], expected[2:4], expected[4:5]]
    first = smartcar.get_connections(world.amt).connections[0]
    assert first.connected_at == made[-1].created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def test_get_connections_filters(world: OAuthWorld) -> None:
    """user_id and vehicle_id filter the listing (each alone and together); the mode is the app's."""
    await world.connect_vehicle("user-1", "veh-a")
    await world.connect_vehicle("user-1", "veh-b")
    await world.connect_vehicle("user-2", "veh-a")
    by_user = smartcar.get_connections(world.amt, {"user_id": "user-1"})
    assert [(c.user_id, c.vehicle_id) for c in by_user.connections] == [("user-1", "veh-b"), ("user-1", "veh-a")]
    by_vehicle = smartcar.get_connections(world.amt, {"vehicle_id": "veh-a"})
    assert [(c.user_id, c.vehicle_id) for c in by_vehicle.connections] == [("user-2", "veh-a"), ("user-1", "veh-a")]
    both = smartcar.get_connections(world.amt, {"user_id": "user-2", "vehicle_id": "veh-a"})
    assert [(c.user_id, c.vehicle_id) for c in both.connections] == [("user-2", "veh-a")]
    auth = ("default", world.amt)
    async with httpx.AsyncClient(base_url=world.base_url, auth=auth) as http:
        test_mode = (await http.get("/v2.0/management/connections", params={"mode": "test"})).json()
        live_mode = (await http.get("/v2.0/management/connections", params={"mode": "live"})).json()
    assert {c["mode"] for c in test_mode["connections"]} == {"test"}
    assert len(test_mode["connections"]) == 3
    assert live_mode == {"connections": [], "paging": {"cursor": None}}


async def test_connections_without_a_user_are_listed_with_user_id_null(world: OAuthWorld) -> None:
    """fleetgate's choice: a connection made without Connect (the CLI) is listed with userId null."""
    await world.connect_vehicle(None, "veh-cli")
    async with httpx.AsyncClient(base_url=world.base_url, auth=("default", world.amt)) as http:
        body = (await http.get("/v2.0/management/connections/")).json()
    assert [(c["userId"], c["vehicleId"]) for c in body["connections"]] == [(None, "veh-cli")]


async def test_revoked_connections_are_not_listed(world: OAuthWorld) -> None:
    """A revoked connection leaves the listing."""
    kept = await world.connect_vehicle("user-1", "veh-a")
    gone = await world.connect_vehicle("user-1", "veh-b")
    await world.connect.revoke(gone.id)
    listed = smartcar.get_connections(world.amt).connections
    assert [c.vehicle_id for c in listed] == [kept.vehicle_id]


async def test_delete_by_vehicle_revokes_every_users_connection_of_it(world: OAuthWorld) -> None:
    """delete_connections by vehicle_id revokes it for every user (each with its event); a user left without a
    connection loses their tokens, one with another vehicle keeps them."""
    alone = await world.user_access("user-1", "veh-a")
    other = await world.user_access("user-2", "veh-a", "veh-b")
    deleted = smartcar.delete_connections(world.amt, {"vehicle_id": "veh-a"})
    assert sorted((c.user_id, c.vehicle_id) for c in deleted.connections) == [("user-1", "veh-a"), ("user-2", "veh-a")]
    revoked = [e for e in await world.events() if e["type"] == "connection.revoked"]
    assert sorted(e["user_id"] for e in revoked) == ["user-1", "user-2"]
    assert [c.vehicle_id for c in smartcar.get_connections(world.amt).connections] == ["veh-b"]
    with pytest.raises(smartcar.SmartcarException) as caught:
        smartcar.get_user(alone.access_token)
    assert_authentication(caught.value)
    assert smartcar.get_vehicles(other.access_token).vehicles == ["veh-b"]


async def test_delete_by_user_and_by_pair(world: OAuthWorld) -> None:
    """By user_id: all their vehicles; by both: that one pair (over HTTP: the SDK refuses both)."""
    await world.connect_vehicle("user-1", "veh-a")
    await world.connect_vehicle("user-1", "veh-b")
    await world.connect_vehicle("user-2", "veh-a")
    await world.connect_vehicle("user-2", "veh-b")
    deleted = smartcar.delete_connections(world.amt, {"user_id": "user-1"})
    assert sorted(c.vehicle_id for c in deleted.connections) == ["veh-a", "veh-b"]
    async with httpx.AsyncClient(base_url=world.base_url, auth=("default", world.amt)) as http:
        pair = await http.delete("/v2.0/management/connections", params={"user_id": "user-2", "vehicle_id": "veh-b"})
    assert pair.json() == {"connections": [{"userId": "user-2", "vehicleId": "veh-b"}]}
    assert [(c.user_id, c.vehicle_id) for c in smartcar.get_connections(world.amt).connections] == [("user-2", "veh-a")]


async def test_delete_without_a_filter_is_validation_400(world: OAuthWorld) -> None:
    """Neither user_id nor vehicle_id: Smartcar's VALIDATION 400, nothing revoked."""
    await world.connect_vehicle("user-1", "veh-a")
    with pytest.raises(smartcar.SmartcarException) as caught:
        smartcar.delete_connections(world.amt, {})
    assert (caught.value.status_code, caught.value.type) == (400, "VALIDATION")
    assert len(smartcar.get_connections(world.amt).connections) == 1


@pytest.mark.parametrize("cursor", ["%%%", base64.urlsafe_b64encode(b"no-colon").decode(), "YWJjOmRlZg"])
async def test_malformed_cursor_is_validation_400(world: OAuthWorld, cursor: str) -> None:
    """A cursor that is not one of ours is VALIDATION 400."""
    with pytest.raises(smartcar.SmartcarException) as caught:
        smartcar.get_connections(world.amt, None, {"cursor": cursor})
    assert (caught.value.status_code, caught.value.type) == (400, "VALIDATION")


@pytest.mark.parametrize("limit", [0, 101, "x"])
async def test_bad_limit_is_validation_400(world: OAuthWorld, limit: object) -> None:
    """limit outside 1-100 is VALIDATION 400."""
    with pytest.raises(smartcar.SmartcarException) as caught:
        smartcar.get_connections(world.amt, None, {"limit": limit})
    assert (caught.value.status_code, caught.value.type) == (400, "VALIDATION")


async def test_wrong_management_token_is_authentication_401(world: OAuthWorld) -> None:
    """An unknown management token, a client secret, or the right token under another user name: 401."""
    for token in ("not-a-token", world.secret):
        with pytest.raises(smartcar.SmartcarException) as caught:
            smartcar.get_connections(token)
        assert_authentication(caught.value)
        with pytest.raises(smartcar.SmartcarException) as caught:
            smartcar.delete_connections(token, {"vehicle_id": "veh-a"})
        assert_authentication(caught.value)
    async with httpx.AsyncClient(base_url=world.base_url) as http:
        response = await http.get("/v2.0/management/connections/", auth=("admin", world.amt))
    assert response.status_code == 401
