"""Driving Connect over HTTP in tests: an in-process app (httpx.ASGITransport) on the test's redis-server, an app
registered in test mode, and each screen's form posted as a browser would."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx

from schemas.application import Application, AppMode
from services.http import HttpContext, create_app
from services.keyspace import Keys
from services.redis_client import Client
from services.registry import Registry
from services.settings import Settings
from simulator.accounts import SimulatorAccounts

REDIRECT_URI = "https://app.example/cb"
BASE_URL = "http://fleetgate.test"
_NONCE = re.compile(r'name="nonce" value="([^"]+)"')


@dataclass
class Harness:
    http: httpx.AsyncClient
    context: HttpContext
    app: Application

    @property
    def registry(self) -> Registry:
        return self.context.registry

    async def events(self) -> int:
        """How many connection events were written."""
        return int(await self.context.redis.xlen(self.registry.keys.connection_events))

    def params(self, **extra: str) -> dict[str, str]:
        return {"response_type": "code", "client_id": self.app.id, "redirect_uri": REDIRECT_URI, **extra}

    async def start(self, path: str = "/oauth/authorize", **extra: str) -> str:
        """The flow id of a valid authorize request."""
        response = await self.http.get(path, params=self.params(**extra))
        assert response.status_code == 303, response.text
        return query(response.headers["location"])["flow"]

    async def sign_in(self, flow: str, email: str, password: str = "pw", make: str = "CHEVROLET") -> httpx.Response:
        """Preamble, brand select (when shown) and login posted; the login's response."""
        response = await self.http.post("/oauth/connect/preamble", data={"flow": flow})
        assert response.status_code == 303, response.text
        if urlsplit(response.headers["location"]).path.endswith("/brand"):
            response = await self.http.post("/oauth/connect/brand", data={"flow": flow, "make": make})
            assert response.status_code == 303, response.text
        return await self.http.post(
            "/oauth/connect/login", data={"flow": flow, "username": email, "password": password}
        )

    async def grant_screen(self, flow: str) -> tuple[str, str]:
        """The grant screen's nonce and HTML."""
        response = await self.http.get("/oauth/connect/grant", params={"flow": flow})
        assert response.status_code == 200, response.text
        match = _NONCE.search(response.text)
        assert match is not None
        return match[1], response.text

    async def to_grant(self, email: str = "someone@example.com", **extra: str) -> tuple[str, str, str]:
        """A flow signed in and at its grant screen: (flow id, nonce, grant screen HTML)."""
        flow = await self.start(**extra)
        response = await self.sign_in(flow, email)
        assert response.status_code == 303, response.text
        assert urlsplit(response.headers["location"]).path == "/oauth/connect/grant", response.headers["location"]
        nonce, html = await self.grant_screen(flow)
        return flow, nonce, html

    async def post_grant(
        self, flow: str, nonce: str, *, vehicles: list[str], permissions: list[str], action: str = "approve"
    ) -> httpx.Response:
        data = {"flow": flow, "nonce": nonce, "action": action, "vehicle": vehicles, "permission": permissions}
        return await self.http.post("/oauth/connect/grant", data=data)


def query(location: str) -> dict[str, str]:
    """A redirect's query parameters (each once)."""
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query, keep_blank_values=True).items()}


def vehicle_ids(html: str) -> list[str]:
    return re.findall(r'name="vehicle" value="([^"]+)"', html)


@asynccontextmanager
async def harness(
    redis: Client, keys: Keys, redis_url: str, *, mode: AppMode = AppMode.TEST, **settings: int
) -> AsyncIterator[Harness]:
    config = Settings(redis_url=redis_url, key_prefix=keys.prefix, **settings)  # type: ignore[arg-type]
    registry = Registry(redis, keys)
    context = HttpContext(config, redis, registry, SimulatorAccounts(registry))
    created = await context.apps.create("Acme EV", [REDIRECT_URI, "https://app.example/other?tenant=7"], mode)
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield Harness(http, context, created.app)
