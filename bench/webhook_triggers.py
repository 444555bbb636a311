"""The webhook triggers' costs, on a private redis-server (not a test):

    .venv/bin/python -m bench.webhook_triggers [--responses 100000] [--vehicles 1000] [--subscribed 100]

1. Idle: the Redis commands one step of the lease holder sends when no webhook exists (nothing due, then the
   change poll), counted with INFO commandstats (the lease's renewal, one more, is not part of a step).
2. Responses: `--responses` responses XADDed before the service starts (one in ten a successful command, the rest
   reads, over `--vehicles` vehicles, `--subscribed` of them subscribed to one verified webhook), then the time the
   service takes to read and acknowledge them all, and the CHANGE_CHECK events it made (coalesced per batch).
The benchmark runs on the same 2 cores as redis-server: read the figures as orders of magnitude.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from bench.private_server import on_private_server
from devtools.builders import make_vehicle
from schemas.application import AppMode
from schemas.messages import ResponseMessage, ResponseStatus
from schemas.webhooks import Triggers
from services.keyspace import Keys
from services.local_redis import RedisServer
from services.redis_client import Client, connect
from services.registry import AppStore, ConnectService, Registry
from services.settings import Settings
from services.webhooks.audience import Audience
from services.webhooks.schedule import Schedule
from services.webhooks.store import WebhookStore
from services.webhooks.triggers import TriggerService


async def commands(redis: Client) -> int:
    stats = await redis.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


async def idle_cost(redis: Client, keys: Keys) -> dict[str, int]:
    schedule = Schedule(Audience(redis, keys), poll_s=30)
    now = int(time.time() * 1000)
    await schedule.step(now)  # the first: the poll is due
    before = await commands(redis)
    await schedule.step(now + 1000)  # nothing due
    quiet = await commands(redis) - before
    before = await commands(redis)
    await schedule.step(now + 31_000)  # the poll
    polled = await commands(redis) - before
    return {"commands_per_quiet_step": quiet, "commands_per_poll": polled}


def response(vehicle_id: str, command: bool) -> bytes:
    now = datetime.now(UTC)
    return ResponseMessage(
        response_id=uuid.uuid4().hex,
        request_id=uuid.uuid4().hex,
        decision_id=uuid.uuid4().hex,
        connection_id="c",
        vehicle_id=vehicle_id,
        kind="command" if command else "signal",
        target="lock" if command else "tractionbattery-stateofcharge",
        status=ResponseStatus.SUCCESS,
        body=None if command else {"percentRemaining": 0.5},
        oem_updated_at=None,
        retrieved_at=now,
        error=None,
        responded_at=now,
    ).encode()


async def responses_cost(server: RedisServer, redis: Client, keys: Keys, args: argparse.Namespace) -> dict[str, Any]:
    registry = Registry(redis, keys)
    created = await AppStore(redis, keys).create("Bench", ["https://app.example/cb"], AppMode.TEST)
    store = WebhookStore(redis, keys)
    webhook = await store.create(
        created.app.id,
        management_token=created.management_token,
        name="bench",
        callback_url="http://127.0.0.1:9/hook",
        signals=["tractionbattery-stateofcharge"],
        triggers=Triggers(),
    )
    await store.set_verified(webhook, True)
    vehicles = [f"v{n}" for n in range(args.vehicles)]
    await registry.add_vehicles(make_vehicle(vehicle_id=v) for v in vehicles[: args.subscribed])
    connect = ConnectService(registry)
    for vehicle_id in vehicles[: args.subscribed]:
        connection = await connect.authorize(vehicle_id, scope="read_battery", app_id=created.app.id, user_id="u")
        await store.subscribe(webhook.id, vehicle_id, connection.id)
    payloads = [response(vehicles[n % len(vehicles)], n % 10 == 0) for n in range(args.responses)]
    stream = keys.shard(0).responses
    for start in range(0, len(payloads), 1000):
        async with redis.pipeline(transaction=False) as pipe:
            for payload in payloads[start : start + 1000]:
                pipe.xadd(stream, {"data": payload})
            await pipe.execute()
    await redis.zadd(keys.webhooks_due, {"poll": 2**50})  # the poll out of the way
    settings = Settings(redis_url=server.url, key_prefix=keys.prefix, block_ms=50)
    service = TriggerService(settings, redis)
    stopping = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(service.run(stopping))
    while service.stats.read < args.responses:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    stopping.set()
    await task
    return {
        "responses": args.responses,
        "seconds": round(elapsed, 2),
        "responses_per_s": round(args.responses / elapsed),
        "events": service.stats.stream_events,
        "batch_size": settings.batch_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--responses", type=int, default=100_000)
    parser.add_argument("--vehicles", type=int, default=1000)
    parser.add_argument("--subscribed", type=int, default=100)
    args = parser.parse_args()

    async def measure(server: RedisServer) -> None:
        redis = connect(server.url)
        try:
            print("idle:", await idle_cost(redis, Keys("bench-idle")))
            print("responses:", await responses_cost(server, redis, Keys("bench"), args))
        finally:
            await redis.aclose()

    on_private_server(measure)


if __name__ == "__main__":
    main()
