"""The app's connections: `/dashboard/apps/{app_id}/connections`.

The list (connection_search.py: a text, the status, the powertrain, a permission; pages of 50, newest first),
one connection with its consent history (consent_history.py), and revoking it: a confirmation page, then a POST
with the session's CSRF token through the management API's own revocation (services/http/revocation.py), which
writes the `connection.revoked` event the gatekeeper follows and revokes the user's tokens if it was their last
connection to the app. Another app's connection answers 404, like an unknown one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from schemas.catalog import get_catalog
from schemas.connection import Connection, ConnectionStatus
from schemas.messages import ConnectionEventMessage
from schemas.powertrain import Powertrain
from services.errors import NotFoundError
from services.http.dashboard.auth import AppScoped, CheckedForm, DashboardNotFoundError, SignedIn
from services.http.dashboard.connection_search import (
    ConnectionQuery,
    ConnectionRow,
    QueryError,
    SearchResult,
    StatusFilter,
    search,
)
from services.http.dashboard.consent_history import consent_history
from services.http.dashboard.layout import app_base, page, see
from services.http.revocation import revoke_connections
from services.registry.records import VehicleSummary, vehicle_summary

router = APIRouter()
ACTIVE = "connections"


@router.get("/apps/{app_id}/connections")
async def connection_list(request: Request, signed: AppScoped) -> Response:
    try:
        query = ConnectionQuery.parse(request.query_params)
    except QueryError as exc:
        return _list_page(request, signed, ConnectionQuery(), None, error=f"Nothing listed: {exc}.", status_code=400)
    return _list_page(request, signed, query, await search(signed.context.registry, signed.app.id, query))


@router.get("/apps/{app_id}/connections/{connection_id}")
async def connection_view(request: Request, signed: AppScoped, connection_id: str, revoked: str = "") -> Response:
    connection = await _own_connection(signed, connection_id)
    history = await consent_history(signed.context.registry, connection)
    context: dict[str, Any] = {
        "connection": connection,
        "vehicle": await _vehicle(signed, connection.vehicle_id),
        "permissions": _permission_rows(connection),
        "history": [{"event": e, "permissions": _permission_rows(e)} for e in history.events],
        "complete": history.complete,
        "just_revoked": revoked == "1" and connection.status is ConnectionStatus.REVOKED,
    }
    title = f"Connection {connection.id}"
    return page(request, signed, "connection.html", context, active=ACTIVE, title=title)


@router.get("/apps/{app_id}/connections/{connection_id}/revoke")
async def revoke_confirm(request: Request, signed: AppScoped, connection_id: str) -> Response:
    """The confirmation step: what revoking means, and the form that does it."""
    connection = await _own_connection(signed, connection_id)
    if connection.status is ConnectionStatus.REVOKED:
        return see(_connection_url(signed, connection_id))
    context = {"connection": connection, "vehicle": await _vehicle(signed, connection.vehicle_id)}
    return page(request, signed, "revoke.html", context, active=ACTIVE, title=f"Revoke {connection.id}?")


@router.post("/apps/{app_id}/connections/{connection_id}/revoke")
async def revoke(signed: AppScoped, connection_id: str, form: CheckedForm) -> Response:
    del form  # checked: it carries the session's CSRF token
    connection = await _own_connection(signed, connection_id)
    if connection.status is ConnectionStatus.ACTIVE:
        await revoke_connections(signed.context, [connection])  # revoked meanwhile by someone else: that is fine
    return see(f"{_connection_url(signed, connection_id)}?revoked=1")


async def _own_connection(signed: SignedIn, connection_id: str) -> Connection:
    """The session's app's connection; the dashboard's 404 for another app's or an unknown id."""
    try:
        connection = await signed.context.registry.connection(connection_id)
    except (NotFoundError, ValueError):  # ValueError: an id no key could hold (a record of an unknown format)
        raise DashboardNotFoundError from None
    if connection.app_id != signed.app.id:
        raise DashboardNotFoundError
    return connection


async def _vehicle(signed: SignedIn, vehicle_id: str) -> VehicleSummary | None:
    record = await signed.context.redis.get(signed.context.registry.keys.vehicle(vehicle_id))
    return None if record is None else vehicle_summary(record)


def _connection_url(signed: SignedIn, connection_id: str) -> str:
    return f"{app_base(signed.app.id)}/connections/{connection_id}"


def _permission_rows(granted: Connection | ConnectionEventMessage) -> list[dict[str, Any]]:
    """Each permission a connection (or one of its events) holds, in catalog order: whether it is required, and
    what it allows."""
    permissions, catalog = granted.permissions, get_catalog()
    return [{"name": name, "required": permissions.is_required(name),
             "description": catalog.permission(name).description} for name in permissions]  # fmt: skip


def _list_page(
    request: Request,
    signed: SignedIn,
    query: ConnectionQuery,
    result: SearchResult | None,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    rows = [] if result is None else result.rows
    context = {
        "query": query,
        "result": result,
        "rows": [_row(r) for r in rows],
        "error": error,
        "statuses": [s.value for s in StatusFilter],
        "powertrains": [p.value for p in Powertrain],
        "permission_names": get_catalog().permission_names,
        "when": _when,
    }
    title = "Connections"
    return page(request, signed, "connections.html", context, active=ACTIVE, title=title, status_code=status_code)


def _row(row: ConnectionRow) -> dict[str, Any]:
    return {"connection": row.connection, "vehicle": row.vehicle, "perms": _permission_rows(row.connection)}


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")  # the column says UTC
