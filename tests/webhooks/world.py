"""A small world for the delivery tests: an app with webhooks on a real receiver, vehicles connected with known
grants, and the real pipeline behind the signal reads (a gatekeeper and the vehicles service, in-process), so what
a delivery carries is what the gatekeeper decides.

- `bev` (a BEV), connected with read_battery and read_odometer granted and read_charge unchecked; `ice` (an ICE,
  so not capable of the battery's signals), connected with everything.
- Retry settings are tiny (base 0.05 s, at most 0.2 s apart, for 2 s; POSTs time out after 0.5 s; leases of 1 s).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from devtools.builders import TEST_TIMINGS, make_vehicle
from devtools.workers import serving
from schemas.access import VehicleAccessConfig
from schemas.powertrain import Powertrain
from schemas.webhooks import Reason, Triggers, Webhook, WebhookEvent
from services.gatekeeper.worker import Gatekeeper, serve
from services.keyspace import Keys
from services.redis_client import Client
from services.registry import AppStore, ConnectService, CreatedApp, Registry
from services.settings import Settings
from services.webhooks import events
from services.webhooks.delivery import DeliveryWorker
from services.webhooks.store import Subscription, WebhookStore
from simulator.vehicles import set_value
from simulator.vehicles.service import VehicleService
from simulator.vehicles.service import serve as serve_vehicles
from simulator.vehicles.state import VehicleState
from simulator.vehicles.store import settings_clock, update_state

SOC = "tractionbattery-stateofcharge"
ODOMETER = "odometer-traveleddistance"
CHARGING = "charge-ischarging"
FUEL = "internalcombustionengine-fuellevel"
LOCKED = "closure-islocked"
SIGNALS = [SOC, ODOMETER, CHARGING, FUEL]
PUBLISHED = [*SIGNALS, LOCKED]
USER = "user-1"
WEBHOOK_TIMINGS = {
    "webhook_retry_base_s": 0.05,
    "webhook_retry_max_s": 0.2,
    "webhook_retry_for_s": 30.0,  # counted from each event's creation: room for a loaded machine's outages
    "webhook_timeout_s": 0.5,
    "webhook_lease_s": 1.0,
    "api_timeout_s": 5.0,
}


def world_settings(redis_url: str, keys: Keys, **overrides: object) -> Settings:
    return Settings(redis_url=redis_url, key_prefix=keys.prefix, **{**TEST_TIMINGS, **WEBHOOK_TIMINGS, **overrides})


@dataclass
class World:
    redis: Client
    keys: Keys
    settings: Settings
    created: CreatedApp
    connections: dict[str, str]
    """vehicle id -> its connection id."""

    @property
    def amt(self) -> str:
        return self.created.management_token

    @property
    def store(self) -> WebhookStore:
        return WebhookStore(self.redis, self.keys)

    async def webhook(
        self,
        url: str,
        *,
        signals: Sequence[str] = SIGNALS,
        vehicles: Sequence[str] = ("bev",),
        triggers: Triggers | None = None,
        error_url: str | None = None,
    ) -> Webhook:
        """A verified webhook to `url` carrying `signals`, with `vehicles` subscribed."""
        made = await self.store.create(
            self.created.app.id,
            management_token=self.amt,
            name="Battery",
            callback_url=url,
            signals=signals,
            triggers=triggers,
            error_callback_url=error_url,
        )
        webhook = await self.store.set_verified(made, True)
        for vehicle in vehicles:
            await self.store.subscribe(webhook.id, vehicle, self.connections[vehicle])
        return webhook

    def event(self, webhook: Webhook, vehicle: str = "bev", reason: Reason = Reason.SCHEDULED) -> WebhookEvent:
        return events.new_event(Subscription(webhook.id, vehicle, self.connections[vehicle]), USER, reason)

    async def settled(self, timeout_s: float = 15.0) -> None:
        """Wait until every event emitted so far is acknowledged (delivered, dead-lettered or skipped)."""
        stream = self.keys.shard(0).webhook_events
        group = self.settings.webhook_group

        async def done() -> bool:
            newest = await self.redis.xrevrange(stream, count=1)
            groups = {g["name"]: g for g in await self.redis.xinfo_groups(stream)} if newest else {}
            ours = groups.get(group.encode()) or groups.get(group)
            if not newest or ours is None:
                return not newest
            return int(ours["pending"]) == 0 and ours["last-delivered-id"] == newest[0][0]

        async with asyncio.timeout(timeout_s):
            while not await done():
                await asyncio.sleep(0.02)

    async def set_signal(self, vehicle_id: str, code: str, value: Any) -> None:
        """Change a simulated vehicle's state by hand (as `fleetgate vehicles set`)."""
        vehicle = await Registry(self.redis, self.keys).vehicle(vehicle_id)
        clock = await settings_clock(self.redis, self.keys, self.settings)

        def change(state: VehicleState) -> VehicleState:
            return set_value(state, vehicle, code, value, clock.now())

        await update_state(self.redis, self.keys, vehicle, seed=self.settings.sim_seed, now=clock.now(), change=change)

    async def emit(self, *made: WebhookEvent) -> list[WebhookEvent]:
        await events.emit(self.redis, self.keys, made)
        return list(made)


async def build(redis: Client, keys: Keys, settings: Settings) -> World:
    registry = Registry(redis, keys)
    created = await AppStore(redis, keys).create("Fleet", ["https://app.example/cb"])
    app_id = created.app.id
    await registry.add_vehicle(make_vehicle(Powertrain.BEV, vehicle_id="bev"))
    await registry.add_vehicle(make_vehicle(Powertrain.ICE, vehicle_id="ice"))
    await registry.publish_config(VehicleAccessConfig.select(signals=PUBLISHED), app_id=app_id)
    connect = ConnectService(registry)
    bev = await connect.authorize("bev", unchecked=["read_charge"], app_id=app_id, user_id=USER)
    ice = await connect.authorize("ice", app_id=app_id, user_id=USER)
    return World(redis, keys, settings, created, {"bev": bev.id, "ice": ice.id})


@contextlib.asynccontextmanager
async def pipeline_running(settings: Settings, redis: Client) -> AsyncIterator[None]:
    """A gatekeeper and the vehicles service for the block: the signal reads' answers."""
    async with serving(Gatekeeper(settings, redis), serve), serving(VehicleService(settings, redis), serve_vehicles):
        yield


@contextlib.asynccontextmanager
async def delivering(settings: Settings, redis: Client) -> AsyncIterator[DeliveryWorker]:
    """A delivery worker for the block, stopped cleanly after."""
    worker = DeliveryWorker(settings, redis)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, timeout=15)
