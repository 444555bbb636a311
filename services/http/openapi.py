"""The HTTP API's OpenAPI document: part of the contract, generated from the app's routes and checked in
(`fleetgate contract export`), like the streams' JSON Schemas."""

from __future__ import annotations

from typing import Any

from schemas.application import AppMode
from services.http.accounts import Account
from services.http.app import create_app
from services.http.context import HttpContext
from services.redis_client import connect
from services.registry import Registry
from services.settings import Settings


class _NoAccounts:
    """The accounts of an app built only to describe itself: nobody logs in."""

    async def login(self, email: str, password: str, *, make: str | None, mode: AppMode) -> Account:
        raise NotImplementedError("an app built to describe itself serves no one")


def openapi_document(settings: Settings) -> dict[str, Any]:
    """The OpenAPI document of the app `fleetgate serve` runs with these settings (no Redis is contacted)."""
    client = connect(settings.redis_url)
    app = create_app(HttpContext(settings, client, Registry(client, settings.keys), _NoAccounts()))
    return app.openapi()
