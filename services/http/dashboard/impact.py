"""What publishing a config means for the app's existing connections: they keep their grants until the owner
re-authenticates, so those whose grants lack a permission the config asks for are the ones affected."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.permissions import PermissionSet
from services.http.context import HttpContext
from services.http.management import app_connections


@dataclass(frozen=True, slots=True)
class Impact:
    active: int
    """The app's active connections."""
    affected: int
    """Those whose grants lack something the config asks for: they need a re-authentication to get it."""


async def impact(context: HttpContext, app_id: str, asked: PermissionSet) -> Impact:
    active = affected = 0
    async for connection in app_connections(context, app_id, None, None):
        active += 1
        if asked.granted & ~connection.permissions.granted:
            affected += 1
    return Impact(active, affected)
