"""Fixtures of the token, identity and management tests: an app in test mode (and another), vehicles connected for
users directly through ConnectService, codes issued directly by TokenStore (the browser flow is Connect's
tests' business), and the official smartcar SDK pointed at the test's server.

`http_settings` is overridden here: a refresh grace of 1 s, and any setting a test passes by indirect
parametrization (`@pytest.mark.parametrize("http_settings", [{"access_token_ttl_s": 1}], indirect=True)`).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import pytest
import smartcar
from redis.asyncio import Redis

from devtools.builders import make_vehicle
from devtools.workers import serving
from schemas.application import AppMode
from schemas.connection import Connection
from schemas.powertrain import Powertrain
from services.gatekeeper.worker import Gatekeeper
from services.gatekeeper.worker import serve as serve_gatekeeper
from services.keyspace import Keys
from services.local_redis import RedisServer
from services.registry import AppStore, ConnectService, CreatedApp, Registry, TokenStore
from services.settings import Settings
from simulator.vehicles.service import VehicleService
from simulator.vehicles.service import serve as serve_vehicles

T = TypeVar("T")
WORKERS_START_TIMEOUT_S = 20.0
REDIRECT_URI = "http://127.0.0.1:9/callback"
SCOPE = "required:read_odometer read_vin read_battery"
READS = (
    "read_vehicle_info read_vin read_odometer read_location read_battery read_charge read_tires read_security"
    " read_service_history read_diagnostics read_fuel read_engine_oil"
)
CONTROLS = "control_security control_charge control_navigation"


@pytest.fixture
def http_settings(request: pytest.FixtureRequest, redis_server: RedisServer, keys: Keys) -> Settings:
    """The test server's settings: the session's redis-server, the test's prefix, a 1 s refresh grace."""
    overrides: dict[str, Any] = {"refresh_grace_s": 1, **getattr(request, "param", {})}
    return Settings(redis_url=redis_server.url, key_prefix=keys.prefix, http_port=0, **overrides)


@dataclass
class OAuthWorld:
    """The server's URL, two apps (shown secrets), and the registry on the test's own event loop."""

    base_url: str
    app: CreatedApp
    other_app: CreatedApp
    redis: Redis
    keys: Keys
    registry: Registry
    connect: ConnectService
    tokens: TokenStore

    @property
    def client_id(self) -> str:
        return self.app.app.id

    @property
    def secret(self) -> str:
        return self.app.client_secret

    @property
    def amt(self) -> str:
        return self.app.management_token

    async def connect_vehicle(
        self, user_id: str | None, vehicle_id: str, *, app_id: str | None = None, scope: str = SCOPE
    ) -> Connection:
        """Register the vehicle if new, and connect it to the app (for the user, or without one: the CLI's way)."""
        if await self.redis.get(self.keys.vehicle(vehicle_id)) is None:
            await self.registry.add_vehicle(make_vehicle(vehicle_id=vehicle_id))
        app_id = app_id or self.client_id
        await asyncio.sleep(0.002)  # distinct creation milliseconds: the management listing's order is testable
        if user_id is None:
            return await self.connect.authorize(vehicle_id, scope=scope, app_id=app_id)
        return await self.connect.connect(app_id, user_id, vehicle_id, scope=scope)

    async def code(self, user_id: str, *, app_id: str | None = None, redirect_uri: str = REDIRECT_URI) -> str:
        return await self.tokens.issue_code(app_id or self.client_id, user_id, redirect_uri)

    def auth_client(self, secret: str | None = None) -> smartcar.AuthClient:
        return smartcar.AuthClient(self.client_id, secret or self.secret, REDIRECT_URI, mode="test")

    async def user_access(self, user_id: str, *vehicle_ids: str) -> Any:
        """Connect the vehicles for the user and exchange a code over HTTP with the SDK: the user's Access."""
        for vehicle_id in vehicle_ids:
            await self.connect_vehicle(user_id, vehicle_id)
        return self.auth_client().exchange_code(await self.code(user_id))

    async def events(self) -> list[dict[str, Any]]:
        """The connection events written so far, oldest first."""
        entries = cast("list[tuple[bytes, dict[bytes, bytes]]]", await self.redis.xrange(self.keys.connection_events))
        return [json.loads(fields[b"data"]) for _, fields in entries]


@pytest.fixture
async def world(
    http_server: str, http_settings: Settings, redis: Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> OAuthWorld:
    """Two test-mode apps on the running server, and the SDK's origins set to it."""
    apps = AppStore(redis, keys)
    app = await apps.create("Acme", [REDIRECT_URI], AppMode.TEST, app_id=f"acme-{uuid.uuid4().hex[:8]}")
    other = await apps.create("Other", [REDIRECT_URI], AppMode.TEST, app_id=f"other-{uuid.uuid4().hex[:8]}")
    registry = Registry(redis, keys)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setattr(smartcar.config, "API_ORIGIN", http_server)
    monkeypatch.setattr(smartcar.config, "AUTH_ORIGIN", f"{http_server}/oauth/token")
    monkeypatch.setattr(smartcar.config, "CONNECT_ORIGIN", http_server)
    monkeypatch.setattr(smartcar.config, "MANAGEMENT_API_ORIGIN", http_server)
    tokens = TokenStore(redis, keys, http_settings.token_lifetimes)
    return OAuthWorld(http_server, app, other, redis, keys, registry, ConnectService(registry), tokens)


@pytest.fixture
async def running(redis: Redis, gatekeeper_settings: Settings) -> AsyncIterator[None]:
    """A gatekeeper and a vehicles service on the test's redis-server and key prefix, ready once both beat (a call
    sent before would wait for its consumer group, past the API's timeout under load)."""
    keys = gatekeeper_settings.keys
    async with (
        serving(Gatekeeper(gatekeeper_settings, redis), serve_gatekeeper),
        serving(VehicleService(gatekeeper_settings, redis), serve_vehicles),
    ):
        deadline = time.monotonic() + WORKERS_START_TIMEOUT_S
        while not (
            await redis.keys(f"{keys.heartbeat_prefix}*") and await redis.keys(f"{keys.vehicles_heartbeat_prefix}*")
        ):
            assert time.monotonic() < deadline, "the gatekeeper and the vehicles service never started beating"
            await asyncio.sleep(0.05)
        yield


async def sdk(call: Callable[[], T]) -> T:
    """Run a blocking SDK call off the event loop, where the gatekeeper and the vehicles service run."""
    return await asyncio.to_thread(call)


async def connected(world: OAuthWorld, powertrain: Powertrain, vehicle_id: str, scope: str) -> smartcar.Vehicle:
    """A vehicle of this powertrain connected for user-1 with the scope, and the SDK's Vehicle for it."""
    await world.registry.add_vehicle(make_vehicle(powertrain, vehicle_id=vehicle_id))
    await world.connect_vehicle("user-1", vehicle_id, scope=scope)
    code = await world.code("user-1")
    token = (await sdk(lambda: world.auth_client().exchange_code(code))).access_token
    return smartcar.Vehicle(vehicle_id, token)
