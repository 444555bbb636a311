"""Fixtures of the dashboard's tests: the app in-process (httpx over ASGI) on the real redis-server, a registered
test-mode application, and a client signed in as it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from redis.asyncio import Redis

from schemas.application import AppMode
from services.http import HttpContext, create_app
from services.registry import AppStore, CreatedApp, Registry
from services.settings import Settings
from simulator.accounts import SimulatorAccounts

ORIGIN = "http://fleetgate.test"
REDIRECT_URI = "http://localhost:8080/callback"


@dataclass(frozen=True, slots=True)
class Dash:
    """A client of the dashboard (signed in as `created` once `sign_in` ran) and the registry behind it."""

    http: httpx.AsyncClient
    registry: Registry
    created: CreatedApp = field(repr=False)  # its secrets stay out of failure reports

    @property
    def app_id(self) -> str:
        return self.created.app.id

    @property
    def base(self) -> str:
        return f"/dashboard/apps/{self.app_id}"

    async def sign_in(self) -> httpx.Response:
        return await self.http.post("/dashboard/login", data={"token": self.created.management_token})

    async def csrf(self, path: str = "/access") -> str:
        """The CSRF token of the session, read from a page's form."""
        page = await self.http.get(self.base + path)
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found, page.text[:500]
        return found.group(1)


async def new_app(registry: Registry, name: str = "Acme EV") -> CreatedApp:
    return await AppStore(registry.redis, registry.keys).create(name, [REDIRECT_URI], AppMode.TEST)


@pytest.fixture
async def dash(redis: Redis, registry: Registry) -> AsyncIterator[Dash]:
    """A dashboard client for a new app, not signed in yet."""
    settings = Settings(key_prefix=registry.keys.prefix)
    app = create_app(HttpContext(settings, redis, registry, SimulatorAccounts(registry)))
    created = await new_app(registry)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN) as http:
        yield Dash(http, registry, created)


@pytest.fixture
async def signed(dash: Dash) -> Dash:
    """The same client, signed in with the app's management token."""
    response = await dash.sign_in()
    assert response.status_code == 303, response.text
    return dash
