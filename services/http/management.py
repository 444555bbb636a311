"""The management API: list and delete an application's connections (`/v2.0/management/connections[/]`).

- `Authorization: Basic b64("default:" + application management token)`; anything else is AUTHENTICATION 401.
  A management token reaches only its own application's connections.
- GET: `user_id`, `vehicle_id`, `mode` filters, `limit` (1-100, default 10) and `cursor`; newest first. The
  cursor is opaque (base64url of the last connection's creation ms and id); a malformed one is VALIDATION 400.
- fleetgate's choice: connections made without a user (the command line, the simulator's owners) are listed
  with `"userId": null`; every connection's `mode` is its application's mode.
- DELETE: by `vehicle_id` (every user), `user_id` (every vehicle), or both (that one pair); neither is
  VALIDATION 400. Each revoked connection has its `connection.revoked` event; a user left without a connection to
  the app has their tokens revoked (services/http/revocation.py).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from datetime import UTC
from typing import Annotated, Literal, cast

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from schemas.application import Application
from schemas.connection import Connection, ConnectionStatus
from services.http.auth import BasicCredentials, management_basic
from services.http.context import HttpContext, get_context
from services.http.errors import validation_error
from services.http.identity import ERRORS
from services.http.links import Link, ok, operation_ref, to_vehicle_operations
from services.http.revocation import revoke_connections, user_connection
from services.redis_client import get_many
from services.registry.records import decode_connection

MANAGEMENT_USER = "default"
MAX_LIMIT = 100
SCAN_BATCH = 200
PATHS = ("/v2.0/management/connections/", "/v2.0/management/connections")

Position = tuple[int, str]
"""Where a listing stands: a connection's creation time (epoch ms) and id; newest first, ties by id, descending."""

router = APIRouter(tags=["management"])


class ListedConnection(BaseModel):
    user_id: str | None = Field(serialization_alias="userId")
    vehicle_id: str = Field(serialization_alias="vehicleId")
    connected_at: str = Field(serialization_alias="connectedAt")
    mode: str


class CursorPaging(BaseModel):
    cursor: str | None
    """The next page's cursor; null on the last page."""


class ConnectionList(BaseModel):
    connections: list[ListedConnection]
    paging: CursorPaging


class DeletedConnection(BaseModel):
    user_id: str | None = Field(serialization_alias="userId")
    vehicle_id: str = Field(serialization_alias="vehicleId")


class DeletedConnections(BaseModel):
    connections: list[DeletedConnection]


async def management_app(
    context: Annotated[HttpContext, Depends(get_context)],
    credentials: Annotated[BasicCredentials | None, Depends(management_basic)],
) -> Application:
    """The application of a valid management token; AUTHENTICATION 401 otherwise."""
    if credentials is None or credentials.username != MANAGEMENT_USER or not credentials.password:
        raise HTTPException(401)
    app = await context.apps.app_of_management_token(credentials.password)
    if app is None:
        raise HTTPException(401)
    return app


App = Annotated[Application, Depends(management_app)]
Context = Annotated[HttpContext, Depends(get_context)]
UserFilter = Annotated[str | None, Query(min_length=1, max_length=128)]
VehicleFilter = Annotated[str | None, Query(min_length=1, max_length=128)]


def encode_cursor(position: Position) -> str:
    return base64.urlsafe_b64encode(f"{position[0]}:{position[1]}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position | None:
    """The position a cursor names; None when it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    ms, sep, connection_id = text.partition(":")
    if not sep or not ms.isdigit() or not connection_id:
        return None
    return int(ms), connection_id


def position(connection: Connection) -> Position:
    return round(connection.created_at.timestamp() * 1000), connection.id


def _connected_at(connection: Connection) -> str:
    return connection.created_at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def app_connections(
    context: HttpContext, app_id: str, after: Position | None, vehicle_id: str | None
) -> AsyncIterator[Connection]:
    """The app's active connections, newest first, after `after`, of one vehicle if given (the app index is
    secondary: each entry is checked against its record)."""
    redis, keys = context.redis, context.registry.keys
    index = keys.app_connections(app_id)
    top: float | str = "+inf" if after is None else after[0]
    start = 0
    while True:
        entries = cast(
            "list[tuple[bytes | str, float]]",
            await redis.zrevrangebyscore(index, top, "-inf", start=start, num=SCAN_BATCH, withscores=True),
        )
        if not entries:
            return
        start += len(entries)
        ids = [m.decode() if isinstance(m, bytes) else str(m) for m, _ in entries]
        scored = [(int(score), i) for i, (_, score) in zip(ids, entries, strict=True)]
        wanted = [(ms, i) for ms, i in scored if after is None or (ms, i) < after]
        records = await get_many(redis, [keys.connection(i) for _, i in wanted])
        for (_, connection_id), record in zip(wanted, records, strict=True):
            if record is None:
                continue
            connection = decode_connection(connection_id, record)
            if connection.status is not ConnectionStatus.ACTIVE or connection.app_id != app_id:
                continue
            if vehicle_id is None or connection.vehicle_id == vehicle_id:
                yield connection


async def _listing(
    context: HttpContext, app_id: str, user_id: str | None, vehicle_id: str | None, after: Position | None
) -> AsyncIterator[Connection]:
    if user_id is None:
        async for connection in app_connections(context, app_id, after, vehicle_id):
            yield connection
        return
    owned = await context.registry.user_connections(app_id, user_id)
    for connection in sorted(owned, key=position, reverse=True):
        if (after is None or position(connection) < after) and vehicle_id in (None, connection.vehicle_id):
            yield connection


async def list_connections(
    *,
    request: Request,
    app: App,
    context: Context,
    user_id: UserFilter = None,
    vehicle_id: VehicleFilter = None,
    mode: Literal["live", "test", "simulated"] | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 10,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> ConnectionList | JSONResponse:
    after = None if cursor is None else decode_cursor(cursor)
    if cursor is not None and after is None:
        return validation_error(request, parameter=True, app_name=app.name)
    page: list[Connection] = []
    if mode is None or mode == app.mode.value:
        async for connection in _listing(context, app.id, user_id, vehicle_id, after):
            page.append(connection)
            if len(page) > limit:
                break
    more = len(page) > limit
    page = page[:limit]
    listed = [
        ListedConnection(user_id=c.user_id, vehicle_id=c.vehicle_id, connected_at=_connected_at(c), mode=app.mode.value)
        for c in page
    ]
    next_cursor = encode_cursor(position(page[-1])) if more else None
    return ConnectionList(connections=listed, paging=CursorPaging(cursor=next_cursor))


async def delete_connections(
    *, request: Request, app: App, context: Context, user_id: UserFilter = None, vehicle_id: VehicleFilter = None
) -> DeletedConnections | JSONResponse:
    if user_id is None and vehicle_id is None:
        return validation_error(request, parameter=True, app_name=app.name)
    if user_id is not None and vehicle_id is not None:
        found = await user_connection(context, app.id, user_id, vehicle_id)
        targets = [] if found is None else [found]
    elif user_id is not None:
        targets = await context.registry.user_connections(app.id, user_id)
    else:
        targets = [c async for c in app_connections(context, app.id, None, vehicle_id)]
    revoked = await revoke_connections(context, targets)
    return DeletedConnections(
        connections=[DeletedConnection(user_id=c.user_id, vehicle_id=c.vehicle_id) for c in revoked]
    )


def listing_links(path: str) -> dict[str, Link]:
    """The listing's links: the next page, the first connection's vehicle and user, revoking that connection,
    and the operations on its vehicle (with its user's access token, not this management token)."""
    first = "$response.body#/connections/0"
    same_query = {f"query.{name}": f"$request.query.{name}" for name in ("user_id", "vehicle_id", "mode", "limit")}
    listing, revoking = operation_ref("GET", path), operation_ref("DELETE", path)
    return {
        "next_page": {
            "operationRef": listing,
            "parameters": {**same_query, "query.cursor": "$response.body#/paging/cursor"},
            "description": "The next page of the same listing (no cursor: this was the last page)",
        },
        "connections_of_vehicle": {
            "operationRef": listing,
            "parameters": {"query.vehicle_id": f"{first}/vehicleId"},
            "description": "Every user's connection of the first connection's vehicle",
        },
        "connections_of_user": {
            "operationRef": listing,
            "parameters": {"query.user_id": f"{first}/userId"},
            "description": "The connections of the first connection's user",
        },
        "revoke_connection": {
            "operationRef": revoking,
            "parameters": {"query.vehicle_id": f"{first}/vehicleId", "query.user_id": f"{first}/userId"},
            "description": "Revoke the first connection (one without a user: every connection of its vehicle)",
        },
        **to_vehicle_operations(f"{first}/vehicleId", "the access token of the connection's user (`userId`)"),
    }


ERROR_400 = "VALIDATION: a malformed cursor or parameter (DELETE: neither user_id nor vehicle_id)"
RESPONSES = {**ERRORS, 400: {**ERRORS[400], "description": ERROR_400}}
for _path in PATHS:
    router.add_api_route(
        _path,
        list_connections,
        methods=["GET"],
        response_model=ConnectionList,
        responses={**RESPONSES, 200: ok("A page of the application's connections", listing_links(_path))},
        summary="The application's connections, newest first",
    )
    router.add_api_route(
        _path,
        delete_connections,
        methods=["DELETE"],
        response_model=DeletedConnections,
        responses=RESPONSES,
        summary="Revoke the application's connections of a vehicle, a user, or both",
    )
