"""Webhooks end to end, as an app uses them: the official SDK subscribes a vehicle on a real server, a gatekeeper, the
vehicles service and the webhook worker run, and a real receiver checks every signature with the SDK. What arrives:
the FIRST_DELIVERY with exactly the granted signals (a PERMISSION entry for the ungranted one, VEHICLE_NOT_CAPABLE
for the one a BEV lacks), a SIGNAL_UPDATED after the SDK's unlock, the revocation's VEHICLE_ERROR after the
management API's delete_connections, then nothing more."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import smartcar
from redis.asyncio import Redis

from schemas.powertrain import Powertrain
from schemas.webhooks import Reason
from services.local_redis import RedisServer
from services.settings import Settings
from services.webhooks import events
from services.webhooks.log import last_deliveries
from services.webhooks.sender import Sender
from services.webhooks.store import Subscription, WebhookStore
from services.webhooks.verify import verify
from services.webhooks.worker import WebhookWorker
from tests.http.oauth.conftest import OAuthWorld, connected, sdk
from tests.webhooks.receiver import Received, receiving
from tests.webhooks.world import FUEL, LOCKED, ODOMETER, SOC, world_settings

pytestmark = pytest.mark.redis
SCOPE = "read_battery read_fuel read_security control_security"


@contextlib.asynccontextmanager
async def webhook_worker(settings: Settings, redis: Redis) -> AsyncIterator[None]:
    worker = WebhookWorker(settings, redis)
    task = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        worker.stop()
        await asyncio.wait_for(task, timeout=15)


def statuses(event: Received) -> dict[str, Any]:
    """Each signal's status (and, for a value, that it carries a body) by code."""
    found: dict[str, Any] = {}
    for signal in event.body["data"]["signals"]:
        status = signal["status"]
        found[signal["code"]] = status.get("error") or ("value" if "body" in signal else status["value"])
    return found


@pytest.mark.usefixtures("running")
async def test_a_subscribed_vehicle_gets_its_granted_signals_its_changes_and_its_revocation(
    world: OAuthWorld, redis_server: RedisServer, redis: Redis
) -> None:
    settings = world_settings(redis_server.url, world.keys, webhook_poll_s=3600)
    store = WebhookStore(redis, world.keys)
    async with receiving(world.amt) as receiver, webhook_worker(settings, redis):
        made = await store.create(
            world.client_id,
            management_token=world.amt,
            name="Fleet state",
            callback_url=f"{receiver.url}/hooks",
            signals=[SOC, ODOMETER, LOCKED, FUEL],
        )
        sender = Sender(timeout_s=5, max_response_bytes=4096)
        try:
            assert (await verify(store, sender, made)).verified
        finally:
            await sender.close()
        vehicle = await connected(world, Powertrain.BEV, "bev-hooks", SCOPE)
        await sdk(lambda: vehicle.subscribe(made.id))
        (connection,) = await world.registry.user_connections(world.client_id, "user-1")

        (first,) = await receiver.wait_for(1)
        assert first.path == "/hooks"
        assert first.body["triggers"] == [{"type": "FIRST_DELIVERY"}]
        assert first.body["data"]["vehicle"]["id"] == "bev-hooks"
        assert statuses(first) == {
            SOC: "value",
            LOCKED: "value",
            ODOMETER: {"type": "PERMISSION", "code": None},
            FUEL: {"type": "COMPATIBILITY", "code": "VEHICLE_NOT_CAPABLE"},
        }
        locked = next(s["body"]["value"] for s in first.body["data"]["signals"] if s["code"] == LOCKED)

        await sdk(vehicle.unlock if locked else vehicle.lock)
        changed = (await receiver.wait_for(2))[1]
        assert [t["signal"]["code"] for t in changed.body["triggers"]] == [LOCKED]
        assert {t["type"] for t in changed.body["triggers"]} == {"SIGNAL_UPDATED"}
        now_locked = next(s["body"]["value"] for s in changed.body["data"]["signals"] if s["code"] == LOCKED)
        assert now_locked is not locked

        await sdk(lambda: smartcar.delete_connections(world.amt, {"vehicle_id": "bev-hooks"}))
        revoked = (await receiver.wait_for(3))[2]
        assert revoked.body["eventType"] == "VEHICLE_ERROR"
        assert [(e["type"], e["code"]) for e in revoked.body["data"]["errors"]] == [
            ("CONNECTED_SERVICES_ACCOUNT", "PERMISSION")
        ]
        assert await store.subscribers(made.id) == {}

        # Silence after the revocation: an event still made for the old subscription is skipped, not delivered.
        late = events.new_event(Subscription(made.id, "bev-hooks", connection.id), "user-1", Reason.SCHEDULED)
        await events.emit(redis, world.keys, [late])
        async with asyncio.timeout(15):
            while not any(
                r["event_id"] == late.event_id for r in await last_deliveries(redis, world.keys, made.id, 10)
            ):
                await asyncio.sleep(0.05)
        logged = {r["event_id"]: r["status"] for r in await last_deliveries(redis, world.keys, made.id, 10)}
        assert logged[late.event_id] == "skipped"
    assert receiver.event_ids() == [first.body["eventId"], changed.body["eventId"], revoked.body["eventId"]]
    assert receiver.bad_signatures == []
