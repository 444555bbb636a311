"""Revoking connections from the HTTP API (a user's disconnect, the management API's delete), and what follows.

Each connection is revoked by `ConnectService.revoke` (with its `connection.revoked` event). fleetgate's choice:
a user left with no active connection to the app has every token revoked too (`TokenStore.revoke_user`), so a
token outlives its user's last connection by nothing; Smartcar says only that the token is "revoked".
"""

from __future__ import annotations

from collections.abc import Iterable

from schemas.connection import Connection, ConnectionStatus
from services.errors import NotFoundError, RevokedError
from services.http.context import HttpContext


async def revoke_connections(context: HttpContext, connections: Iterable[Connection]) -> list[Connection]:
    """Revoke each connection (one revoked meanwhile by someone else is left out of the result); then revoke the
    tokens of every user concerned who has no active connection to the app left."""
    revoked: list[Connection] = []
    for connection in connections:
        try:
            revoked.append(await context.connect.revoke(connection.id))
        except (NotFoundError, RevokedError):
            continue  # a concurrent revoke won: nothing of ours to report
    users = {(c.app_id, c.user_id) for c in revoked if c.user_id is not None}
    for app_id, user_id in sorted(users):
        if not await context.registry.user_connections(app_id, user_id):
            await context.tokens.revoke_user(app_id, user_id)
    context.lookups.forget_all()
    return revoked


async def user_connection(context: HttpContext, app_id: str, user_id: str, vehicle_id: str) -> Connection | None:
    """The user's active connection to the app for this vehicle; None for any other vehicle id (another user's,
    another app's, revoked, unknown): callers answer all of these alike."""
    found = await context.redis.hget(context.registry.keys.user_connections(app_id, user_id), vehicle_id)
    if found is None:
        return None
    connection_id = found.decode() if isinstance(found, bytes) else str(found)
    try:
        connection = await context.registry.connection(connection_id)
    except NotFoundError:
        return None
    if (connection.app_id, connection.user_id, connection.vehicle_id) != (app_id, user_id, vehicle_id):
        return None
    return connection if connection.status is ConnectionStatus.ACTIVE else None


async def routed_connection(context: HttpContext, app_id: str, user_id: str, vehicle_id: str) -> Connection | None:
    """`user_connection`, remembered briefly (services/http/lookups.py): for the vehicle API only, whose requests
    the gatekeeper decides against the connection's live record."""
    return await context.lookups.connections.get_or_load(
        (app_id, user_id, vehicle_id), lambda: user_connection(context, app_id, user_id, vehicle_id)
    )
