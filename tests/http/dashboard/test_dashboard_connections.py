"""The dashboard's Connections page over HTTP (in-process, real redis-server): the app's connections and no other's,
search by user, vehicle, permission, powertrain and status, paging, a connection's consent history, and revoking
with the session's CSRF token through the management API's revocation."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import cast

import pytest

from devtools.builders import make_vehicle
from schemas.connection import ConnectionStatus
from schemas.messages import ConnectionEventMessage, ConnectionEventType
from schemas.powertrain import Powertrain
from services.keyspace import Keys
from services.registry import Authorization, ConnectService, Registry
from tests.http.dashboard.conftest import Dash, new_app
from tests.http.dashboard.test_dashboard_pages import text_of

ODOMETER_AND_LOCATION = "read_odometer read_location"


async def connect(registry: Registry, app_id: str, vehicle_id: str, user_id: str | None, scope: str) -> str:
    """A connection of the app for a vehicle registered first (a BEV unless the id says `ice`)."""
    powertrain = Powertrain.ICE if "ice" in vehicle_id else Powertrain.BEV
    await registry.add_vehicles([make_vehicle(powertrain, vehicle_id=vehicle_id)])
    connection = await ConnectService(registry).authorize(vehicle_id, scope=scope, app_id=app_id, user_id=user_id)
    return connection.id


def listed(html: str) -> list[str]:
    """The connection ids of the list's rows, in order."""
    return re.findall(r'<tr id="connection-([^"]+)"', html)


async def events_on_stream(registry: Registry, connection_id: str) -> list[ConnectionEventMessage]:
    stream = registry.keys.shard_of_connection(connection_id).connection_events
    entries = cast("list[tuple[bytes, dict[bytes, bytes]]]", await registry.redis.xrange(stream))
    found = [ConnectionEventMessage.model_validate_json(fields[b"data"]) for _, fields in entries]
    return [e for e in found if e.connection_id == connection_id]


async def test_list_shows_the_apps_connections_and_not_another_apps(signed: Dash) -> None:
    """The app's active and revoked connections are listed with vehicle, user, powertrain and permissions; another
    app's connection is not."""
    mine = await connect(signed.registry, signed.app_id, "bev-1", "user-a", ODOMETER_AND_LOCATION)
    gone = await connect(signed.registry, signed.app_id, "ice-2", None, "read_odometer")
    await ConnectService(signed.registry).revoke(gone)
    other = await new_app(signed.registry, "Someone else")
    theirs = await connect(signed.registry, other.app.id, "bev-3", "user-a", "read_odometer")
    html = (await signed.http.get(f"{signed.base}/connections")).text
    assert sorted(listed(html)) == sorted([mine, gone])
    assert theirs not in html
    row = text_of(html, f"connection-{mine}")
    for shown in ("bev-1", "user-a", "BEV", "read_location", "active"):
        assert shown in row
    assert "revoked" in text_of(html, f"connection-{gone}")


async def test_search_by_user_vehicle_permission_powertrain_and_status(signed: Dash) -> None:
    """Each filter narrows the list to the connections it names, alone and combined."""
    a = await connect(signed.registry, signed.app_id, "bev-a", "alice", ODOMETER_AND_LOCATION)
    b = await connect(signed.registry, signed.app_id, "ice-b", "bob", "read_odometer")
    c = await connect(signed.registry, signed.app_id, "bev-c", "bob", "read_location")
    await ConnectService(signed.registry).revoke(c)

    async def ids(**params: str) -> list[str]:
        response = await signed.http.get(f"{signed.base}/connections", params=params)
        assert response.status_code == 200
        return sorted(listed(response.text))

    assert await ids(q="alice") == [a]
    assert await ids(q="ICE-B") == [b]  # case-insensitive, the vehicle id
    assert await ids(q="5YJ3E1EA7KF000001") == sorted([a, b, c])  # the VIN
    assert await ids(permission="read_location") == sorted([a, c])
    assert await ids(powertrain="ICE") == [b]
    assert await ids(status="revoked") == [c]
    assert await ids(status="active") == sorted([a, b])
    assert await ids(q="bob", status="active") == [b]
    assert await ids(q="nobody") == []


async def test_bad_search_parameters_answer_400_with_what_is_wrong(signed: Dash) -> None:
    """A status, powertrain, permission or page that is not one of the choices answers 400 naming it."""
    for params, named in (
        ({"status": "gone"}, "gone"),
        ({"powertrain": "STEAM"}, "STEAM"),
        ({"permission": "read_minds"}, "read_minds"),
        ({"page": "0"}, "'0'"),
    ):
        response = await signed.http.get(f"{signed.base}/connections", params=params)
        assert response.status_code == 400
        assert named in text_of(response.text, "query-error").replace("&#39;", "'")


async def test_paging_fifty_a_page_newest_first(signed: Dash) -> None:
    """120 connections make three pages of 50, 50 and 20, newest first, with links between them; the search keeps
    its parameters from page to page."""
    await signed.registry.add_vehicles(make_vehicle(vehicle_id=f"v{i:03}") for i in range(120))
    made: list[tuple[int, str]] = []  # (batch, id): a batch shares one creation time, ties go by id
    for i in range(0, 120, 30):
        batch = [Authorization(f"v{n:03}", scope="read_odometer") for n in range(i, i + 30)]
        made += [(i, c.id) for c in await ConnectService(signed.registry).authorize_many(batch, app_id=signed.app_id)]
        await asyncio.sleep(0.002)
    pages = [(await signed.http.get(f"{signed.base}/connections", params={"page": n})).text for n in (1, 2, 3)]
    assert [len(listed(p)) for p in pages] == [50, 50, 20]
    assert [i for p in pages for i in listed(p)] == [i for _, i in sorted(made, reverse=True)]
    assert 'id="next-page" href="?page=2"' in pages[0]
    assert "prev-page" not in pages[0]
    assert 'id="prev-page"' in pages[2]
    assert "next-page" not in pages[2]
    searched = await signed.http.get(f"{signed.base}/connections", params={"permission": "read_odometer"})
    assert 'href="?permission=read_odometer&amp;page=2"' in searched.text
    assert "120 connections" in text_of(searched.text, "result-count")


async def test_empty_state(signed: Dash) -> None:
    """An app without connections says so."""
    html = (await signed.http.get(f"{signed.base}/connections")).text
    assert "No connections yet" in text_of(html, "no-connections")


async def test_history_lists_created_reauthorized_and_revoked_in_order(signed: Dash) -> None:
    """A connection created, re-authorized with another scope and revoked shows the three events, oldest first,
    each with the permissions it left."""
    service = ConnectService(signed.registry)
    connection_id = await connect(signed.registry, signed.app_id, "bev-h", "hana", "read_odometer")
    await service.reauthorize(connection_id, scope=ODOMETER_AND_LOCATION)
    await service.revoke(connection_id)
    html = (await signed.http.get(f"{signed.base}/connections/{connection_id}")).text
    assert re.findall(r'<tr class="event" data-type="([^"]+)"', html) == [t.value for t in ConnectionEventType]
    rows = re.findall(r'<tr class="event".*?</tr>', html, re.S)
    assert "read_location" not in rows[0]
    assert "read_location" in rows[1]
    assert "history-trimmed" not in html
    assert "revoke-button" not in html  # nothing left to revoke


@pytest.mark.parametrize("keys", [Keys(f"test-{uuid.uuid4().hex[:10]}", shards=4)])
async def test_revoke_needs_the_csrf_token(signed: Dash) -> None:
    """A revoke POST without the session's CSRF token (or with another) is refused 403 and changes nothing."""
    connection_id = await connect(signed.registry, signed.app_id, "bev-r", "rae", "read_odometer")
    url = f"{signed.base}/connections/{connection_id}/revoke"
    for data in ({}, {"csrf": "forged"}):
        assert (await signed.http.post(url, data=data)).status_code == 403
    assert (await signed.registry.connection(connection_id)).status is ConnectionStatus.ACTIVE
    assert [e.type for e in await events_on_stream(signed.registry, connection_id)] == [ConnectionEventType.CREATED]


@pytest.mark.parametrize("keys", [Keys(f"test-{uuid.uuid4().hex[:10]}", shards=4)])
async def test_revoke_through_the_confirmation_writes_one_revoked_event(signed: Dash) -> None:
    """The confirmation page posts the revocation: one `connection.revoked` event on the connection's shard's
    stream (none on the others), the registry reads it revoked, and the page says so; a second POST adds nothing."""
    connection_id = await connect(signed.registry, signed.app_id, "bev-r", "rae", "read_odometer")
    page = (await signed.http.get(f"{signed.base}/connections/{connection_id}")).text
    assert f'href="{signed.base}/connections/{connection_id}/revoke"' in page
    confirm = (await signed.http.get(f"{signed.base}/connections/{connection_id}/revoke")).text
    form = re.search(r'action="([^"]+)"[^>]*id="revoke-form">.*?name="csrf" value="([^"]+)"', confirm, re.S)
    assert form is not None
    response = await signed.http.post(form.group(1), data={"csrf": form.group(2)})
    assert response.status_code == 303
    assert response.headers["location"] == f"{signed.base}/connections/{connection_id}?revoked=1"
    types = [e.type for e in await events_on_stream(signed.registry, connection_id)]
    assert types == [ConnectionEventType.CREATED, ConnectionEventType.REVOKED]
    shard = signed.registry.keys.shard_of_connection(connection_id)
    for other in signed.registry.keys.all_shards:
        if other.index != shard.index:
            assert await signed.registry.redis.xlen(other.connection_events) == 0
    assert (await signed.registry.connection(connection_id)).status is ConnectionStatus.REVOKED
    shown = (await signed.http.get(response.headers["location"])).text
    assert "Revoked." in text_of(shown, "revoked-notice")
    assert "revoked" in text_of(shown, "connection-status")
    again = await signed.http.post(form.group(1), data={"csrf": form.group(2)})  # a second click: nothing more
    assert again.status_code == 303
    assert len(await events_on_stream(signed.registry, connection_id)) == 2


async def test_another_apps_connection_answers_404(signed: Dash) -> None:
    """Another app's connection id, like an unknown one, answers the dashboard's 404 on its page, its
    confirmation and its revoke POST, and stays active."""
    other = await new_app(signed.registry, "Someone else")
    theirs = await connect(signed.registry, other.app.id, "bev-x", "xena", "read_odometer")
    csrf = await signed.csrf()
    for connection_id in (theirs, "c-unknown", "bad|id"):
        base = f"{signed.base}/connections/{connection_id}"
        assert (await signed.http.get(base)).status_code == 404
        assert (await signed.http.get(f"{base}/revoke")).status_code == 404
        assert (await signed.http.post(f"{base}/revoke", data={"csrf": csrf})).status_code == 404
    assert (await signed.registry.connection(theirs)).status is ConnectionStatus.ACTIVE
