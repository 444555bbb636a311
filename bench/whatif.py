"""What-if, advice and the usage consumer at fleet scale, on a private redis-server (not a test):

    .venv/bin/python -m bench.whatif [--vehicles 100000] [--connections 3000] [--decisions 200000]

Registers the simulator's seeded fleet (simulator/fleet.py) at `--vehicles`, an app with the simulator's config
(simulator/app.toml) and `--connections` connections whose owners unchecked some optional permissions. Then:

- what-if of the app's config against the whole fleet: wall time (median of 5) and this process's CPU seconds;
- advice over a 7-day window: 168 hourly buckets, each with the fields a busy hour of the app leaves (every
  outcome, permission and target of the config, a not-capable count per target, make and powertrain seen);
- the usage consumer: `--decisions` decisions, as the gatekeeper encodes them (decide() on the registered
  vehicles and connections), fed straight onto the decisions stream, then counted by one consumer in this
  process: its CPU microseconds per decision, and redis-server's.

The issue's target: what-if under 2 s at 100,000 vehicles; the usage consumer must keep up with 10,000
decisions/s on this 2-core machine (100 us of CPU per decision at most, for the consumer and Redis together).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from bench.private_server import on_private_server
from bench.proc import cpu_seconds
from bench.results import write_results
from schemas.access import derive
from schemas.catalog import Kind, get_catalog
from schemas.connection import Connection
from schemas.decision import decide, rfc3339
from schemas.messages import RequestMessage
from schemas.outbound import encode_decision
from schemas.vehicle import Vehicle
from services.insights.advice import advise
from services.insights.counts import read_use, tally
from services.insights.usage import UsageConsumer
from services.insights.whatif import what_if
from services.local_redis import RedisServer
from services.redis_client import connect
from services.registry import AppStore, Authorization, ConnectService, Registry
from services.registry.store import chunked
from services.settings import Settings
from simulator.fleet import generate_fleet
from simulator.owners import default_app_config

APP = "bench-app"
ROUNDS = 5


async def timed(rounds: int, work: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """The median wall seconds of `rounds` runs of `work`, and the median CPU seconds of this process."""
    walls, cpus = [], []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        await work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


async def build(
    registry: Registry, vehicles: int, connections: int, seed: int
) -> tuple[list[Vehicle], list[Connection]]:
    """The fleet, the app with its config, and connections to the first `connections` vehicles."""
    fleet = generate_fleet(vehicles, seed)
    await registry.add_vehicles(fleet)
    await AppStore(registry.redis, registry.keys).create("bench", ["http://localhost/cb"], app_id=APP)
    config = await registry.publish_config(default_app_config(), app_id=APP)
    optional = [name for name in derive(config) if not derive(config).is_required(name)]
    rng = random.Random(seed)
    authorizations = [
        Authorization(v.id, unchecked=tuple(p for p in optional if rng.random() < 0.15)) for v in fleet[:connections]
    ]
    made = await ConnectService(registry).authorize_many(authorizations, app_id=APP)
    return fleet, made


async def fill_buckets(redis: Redis, settings: Settings, fleet: list[Vehicle], connected: list[Connection]) -> int:
    """Seven days of hourly buckets for the app, as a busy hour leaves them: every field a batch tally makes of
    decisions over the app's config and the fleet's makes and powertrains. Returns the fields per bucket."""
    uses = list(_decisions(fleet, connected, 20_000, "fill", random.Random(1)))
    kinds = {v.id: (v.powertrain.value, v.make) for v in fleet}
    counts: Counter[str] = Counter()
    for data in uses:
        for bucket in tally([read_use(b"0-0", {b"data": data})], kinds).values():
            counts.update(bucket)
    shard = settings.keys.shard(0)
    hour = int(time.time()) // 3600
    fields: dict[FieldT, EncodableT] = {}
    fields.update(counts)
    async with redis.pipeline(transaction=False) as pipe:
        for h in range(hour - 168, hour + 1):
            pipe.hset(shard.usage(APP, h), mapping=fields)
        await pipe.execute()
    return len(counts)


def _decisions(fleet: list[Vehicle], connected: list[Connection], count: int, run: str, rng: random.Random) -> Any:
    """`count` decisions as the gatekeeper encodes them: requests of connected vehicles for the config's targets
    (and a tenth for any target), decided by decide()."""
    catalog = get_catalog()
    config_targets = [s.code for s in default_app_config().signals] + [c.name for c in default_app_config().commands]
    every = [s.code for s in catalog.signals]
    commands = {c.name for c in catalog.commands}
    vehicles = {v.id: v for v in fleet}
    decided_at = rfc3339(datetime.now(UTC))
    for n in range(count):
        connection = rng.choice(connected)
        target = rng.choice(config_targets) if rng.random() < 0.9 else rng.choice(every)
        kind: Kind = "command" if target in commands else "signal"
        request = RequestMessage(
            request_id=f"{run}-{n}",
            connection_id=connection.id,
            vehicle_id=connection.vehicle_id,
            kind=kind,
            target=target,
            issued_at=datetime.now(UTC),
            params=catalog.command(target).example_params or None if kind == "command" else None,
        )
        decision = decide(request, connection, vehicles[connection.vehicle_id])
        yield encode_decision(decision, request, f"d-{run}-{n}", decided_at, app_id=APP)


async def measure(server: RedisServer, args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings(redis_url=server.url, key_prefix="bench", block_ms=100)
    redis = connect(server.url)
    registry = Registry(redis, settings.keys)
    try:
        started = time.perf_counter()
        fleet, connected = await build(registry, args.vehicles, args.connections, args.seed)
        took = time.perf_counter() - started
        print(f"registered {len(fleet)} vehicles and {len(connected)} connections in {took:.0f} s")
        config = await registry.config(app_id=APP)
        result = await what_if(registry, config, app_id=APP)
        whatif_wall, whatif_cpu = await timed(ROUNDS, lambda: what_if(registry, config, app_id=APP))
        fields = await fill_buckets(redis, settings, fleet, connected)
        advice_wall, advice_cpu = await timed(ROUNDS, lambda: advise(registry, settings, APP, timedelta(days=7)))

        rng = random.Random(args.seed)
        for chunk in chunked(_decisions(fleet, connected, args.decisions, "u", rng), 1000):
            async with redis.pipeline(transaction=False) as pipe:
                for data in chunk:
                    pipe.xadd(settings.keys.decisions, {"data": data})
                await pipe.execute()
        usage = UsageConsumer(settings, redis, batch_size=args.batch_size)
        cpu, redis_cpu, wall = time.process_time(), cpu_seconds(server.process.pid), time.perf_counter()
        stats = await usage.run(until_idle=True)
        wall = time.perf_counter() - wall - settings.block_ms / 1000  # less the final empty read's wait
        cpu, redis_cpu = time.process_time() - cpu, cpu_seconds(server.process.pid) - redis_cpu
        counted = stats.counted + stats.unattributed + stats.skipped
        return {
            "vehicles": len(fleet),
            "connections": len(connected),
            "fleet groups": len({(v.make, v.powertrain, v.capabilities) for v in fleet}),
            "connectable": result.connectable,
            "what-if s (median of 5)": whatif_wall,
            "what-if CPU s of this process": whatif_cpu,
            "advice 7d s (median of 5)": advice_wall,
            "advice 7d CPU s of this process": advice_cpu,
            "fields per hourly bucket": fields,
            "usage: decisions counted": counted,
            "usage: decisions/s (one consumer)": counted / wall,
            "usage: consumer CPU us/decision": cpu / counted * 1e6,
            "usage: redis-server CPU us/decision": redis_cpu / counted * 1e6,
        }
    finally:
        await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vehicles", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=3000)
    parser.add_argument("--decisions", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=Path("bench/results/whatif.json"))
    args = parser.parse_args()
    results = on_private_server(lambda server: measure(server, args))
    targets = {"what-if s (median of 5)": "< 2", "usage: consumer CPU us/decision": "< 100"}
    print(f"\n{'measure':<45} {'value':>12} {'target':>8}")
    for name, value in results.items():
        print(f"{name:<45} {value:>12,.3f} {targets.get(name, '-'):>8}")
    write_results(args.json, results)


if __name__ == "__main__":
    main()
