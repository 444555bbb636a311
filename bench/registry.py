"""Registry benchmark on a private redis-server (not a test):

    .venv/bin/python -m bench.registry [--vehicles 100000] [--json bench/results/registry.json]

Registers N vehicles (pipelined) and N connections (the Connect flow in bulk: config, filters and vehicles
read once, one compare-and-set script per connection, pipelined), then times single lookups (one MGET each,
sequential: the latency-bound case) and reports Redis memory per connection: the INFO used_memory delta of
the connection keys alone, and of the connection-events stream that records each grant.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis

from bench.workload import plain_fleet
from schemas.access import VehicleAccessConfig
from schemas.catalog import get_catalog
from services.keyspace import Keys
from services.local_redis import start_redis_server
from services.redis_client import connect
from services.registry import Authorization, ConnectService, Registry


async def used_memory(redis: Redis) -> int:
    return int((await redis.info("memory"))["used_memory"])


async def measure(redis: Redis, count: int, lookups: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    keys = Keys("bench")
    registry = Registry(redis, keys)
    connect_service = ConnectService(registry)
    signals = rng.sample([s.code for s in get_catalog().signals], 6)
    await registry.publish_config(VehicleAccessConfig.select(signals=signals, commands=["lock"]))
    vehicles = plain_fleet(count, rng)
    started = time.perf_counter()
    await registry.add_vehicles(vehicles)
    vehicle_seconds = time.perf_counter() - started

    before = await used_memory(redis)
    started = time.perf_counter()
    connections = await connect_service.authorize_many([Authorization(v.id) for v in vehicles])
    connection_seconds = time.perf_counter() - started
    after = await used_memory(redis)
    await redis.delete(keys.connection_events)
    events_bytes = after - await used_memory(redis)
    connection_bytes = after - before - events_bytes

    sample = rng.sample(connections, min(lookups, len(connections)))
    started = time.perf_counter()
    for connection in sample:
        await registry.lookup(connection.id, connection.vehicle_id)
    lookup_seconds = time.perf_counter() - started
    memory_usage = await redis.memory_usage(keys.connection(connections[0].id))

    return {
        "vehicles": count,
        "vehicle registrations/s": count / vehicle_seconds,
        "connections": count,
        "connections registered in s": connection_seconds,
        "connection registrations/s": count / connection_seconds,
        "lookups/s (sequential, one MGET each)": len(sample) / lookup_seconds,
        "Redis bytes per connection (keys, INFO delta)": connection_bytes / count,
        "Redis bytes per connection (MEMORY USAGE of one key)": float(memory_usage or 0),
        "Redis bytes per connection event (stream, INFO delta)": events_bytes / count,
    }


async def main_async(args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        server = start_redis_server(Path(directory))
        redis = connect(server.url)
        try:
            return await measure(redis, args.vehicles, args.lookups, args.seed)
        finally:
            await redis.aclose()
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vehicles", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=Path("bench/results/registry.json"))
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    targets = {"connections registered in s": "< 20", "Redis bytes per connection (keys, INFO delta)": "<= 200"}
    print(f"{'measure':<56} {'value':>12} {'target':>8}")
    for name, value in results.items():
        print(f"{name:<56} {value:>12,.1f} {targets.get(name, '-'):>8}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
