"""Webhook deliveries to a local receiver, on a private redis-server (not a test):

    .venv/bin/python -m bench.webhooks [--vehicles 50] [--signals 3] [--burst 2000] [--rate 50] [--seconds 10]
        [--json bench/results/webhooks.json]

One process runs everything: a gatekeeper and the vehicles service (the signal reads of every delivery go through
the pipeline), one delivery worker (services/webhooks/delivery.py), and a receiver (uvicorn on loopback) that
checks each signature and notes when each event arrived. `--vehicles` vehicles are subscribed to one webhook
carrying `--signals` signals. Two phases:

- burst: `--burst` VEHICLE_STATE events emitted at once; deliveries/s from the first emission to the last arrival.
- steady: `--rate` events a second for `--seconds` (open loop, spread over the vehicles); the delay from each
  event's emission (a state change noticed) to its arrival at the receiver, p50 / p99 / max.

Everything shares the machine's 2 cores with the worker: read the figures as orders of magnitude.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import uvicorn
from rich.console import Console
from rich.table import Table

from bench.private_server import on_private_server
from bench.results import write_results
from devtools.builders import SIM_START
from devtools.workers import serving
from schemas.access import VehicleAccessConfig
from schemas.powertrain import Powertrain
from schemas.vehicle import Vehicle, placeholder_vin
from schemas.webhooks import Reason, WebhookEvent
from services.gatekeeper.worker import Gatekeeper, serve
from services.http.server import bind
from services.keyspace import Keys
from services.local_redis import RedisServer
from services.redis_client import Client, connect
from services.registry import AppStore, ConnectService, Registry
from services.settings import Settings
from services.webhooks import events
from services.webhooks.delivery import DeliveryWorker
from services.webhooks.store import Subscription, WebhookStore
from simulator.vehicles.service import VehicleService
from simulator.vehicles.service import serve as serve_vehicles

SIGNALS = ["odometer-traveleddistance", "tractionbattery-stateofcharge", "closure-islocked", "charge-ischarging"]


class Receiver:
    """An endpoint that checks each signature and notes (event id -> arrival time, epoch ms) the first arrival."""

    def __init__(self, key: str) -> None:
        self.key = key.encode()
        self.arrived: dict[str, float] = {}
        self.bad = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        signature = dict(scope["headers"]).get(b"sc-signature", b"").decode()
        if hmac.compare_digest(signature, hmac.new(self.key, raw, hashlib.sha256).hexdigest()):
            self.arrived.setdefault(json.loads(raw)["eventId"], time.time() * 1000)
        else:
            self.bad += 1
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def subscribed(redis: Client, keys: Keys, args: argparse.Namespace, url: str) -> tuple[str, list[Subscription]]:
    """The vehicles, the app and its webhook to `url`, every vehicle subscribed; the signing key."""
    registry = Registry(redis, keys)
    created = await AppStore(redis, keys).create("Bench", ["https://app.example/cb"])
    vehicles = [f"v{n}" for n in range(args.vehicles)]
    await registry.add_vehicles(
        Vehicle.with_defaults(id=v, vin=placeholder_vin(v), make="T", model="3", year=2022, powertrain=Powertrain.BEV)
        for v in vehicles
    )
    signals = SIGNALS[: args.signals]
    await registry.publish_config(VehicleAccessConfig.select(signals=signals), app_id=created.app.id)
    connect_service = ConnectService(registry)
    connections = {v: (await connect_service.authorize(v, app_id=created.app.id)).id for v in vehicles}
    store = WebhookStore(redis, keys)
    made = await store.create(
        created.app.id, management_token=created.management_token, name="bench", callback_url=url, signals=signals
    )
    webhook = await store.set_verified(made, True)
    for vehicle, connection in connections.items():
        await store.subscribe(webhook.id, vehicle, connection)
    return created.management_token, [Subscription(webhook.id, v, connections[v]) for v in vehicles]


async def measure(server: RedisServer, args: argparse.Namespace) -> dict[str, Any]:
    keys = Keys(prefix="bench-webhooks")
    overrides: dict[str, Any] = {"sim_start": SIM_START, "block_ms": 50, "webhook_concurrency": args.concurrency}
    settings = Settings(redis_url=server.url, key_prefix=keys.prefix, **overrides)
    redis = connect(server.url)
    sock = bind("127.0.0.1", 0)
    key, subscriptions = await subscribed(redis, keys, args, f"http://127.0.0.1:{sock.getsockname()[1]}/hook")
    receiver = Receiver(key)
    http = uvicorn.Server(uvicorn.Config(receiver, log_level="warning", lifespan="off"))
    serving_http = asyncio.create_task(http.serve(sockets=[sock]))

    def made(count: int, offset: int = 0) -> list[WebhookEvent]:
        return [
            events.new_event(subscriptions[(offset + n) % len(subscriptions)], "bench-user", Reason.SCHEDULED)
            for n in range(count)
        ]

    async def arrived(ids: set[str], timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            while not ids <= receiver.arrived.keys():
                await asyncio.sleep(0.01)

    worker = DeliveryWorker(settings, redis)
    try:
        async with (
            serving(Gatekeeper(settings, redis), serve),
            serving(VehicleService(settings, redis), serve_vehicles),
        ):
            delivering = asyncio.create_task(worker.run())
            warm = made(len(subscriptions))
            await events.emit(redis, keys, warm)
            await arrived({e.event_id for e in warm}, 60)

            burst = made(args.burst)
            started = time.time() * 1000
            await events.emit(redis, keys, burst)
            await arrived({e.event_id for e in burst}, 600)
            burst_s = (max(receiver.arrived[e.event_id] for e in burst) - started) / 1000

            steady: list[WebhookEvent] = []
            interval = 1 / args.rate
            next_at = time.monotonic()
            for n in range(int(args.rate * args.seconds)):
                event = made(1, n)[0]
                await events.emit(redis, keys, [event])
                steady.append(event)
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            await arrived({e.event_id for e in steady}, 120)
            delays = [receiver.arrived[e.event_id] - e.created_at for e in steady]
            worker.stop()
            await delivering
    finally:
        http.should_exit = True
        await serving_http
        await redis.aclose()
    return {
        "vehicles": args.vehicles,
        "signals per webhook": args.signals,
        "deliveries in flight per webhook": args.concurrency,
        "burst: events": args.burst,
        "burst: deliveries/s": args.burst / burst_s,
        "steady: events/s offered": args.rate,
        "steady: delay p50 ms": percentile(delays, 0.5),
        "steady: delay p99 ms": percentile(delays, 0.99),
        "steady: delay max ms": max(delays),
        "bad signatures": receiver.bad,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vehicles", type=int, default=50)
    parser.add_argument("--signals", type=int, default=3, choices=range(1, len(SIGNALS) + 1))
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8, help="FLEETGATE_WEBHOOK_CONCURRENCY (default 8)")
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--json", type=Path, default=Path("bench/results/webhooks.json"))
    args = parser.parse_args()
    results = on_private_server(lambda server: measure(server, args))
    table = Table("measure", "value", title="Webhook deliveries (one process: worker, pipeline, receiver)")
    for name, value in results.items():
        table.add_row(name, f"{value:,.1f}" if isinstance(value, float) else str(value))
    Console().print(table)
    write_results(args.json, results)


if __name__ == "__main__":
    main()
