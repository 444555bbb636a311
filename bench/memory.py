"""Redis memory per decided request, by what holds it: for sizing a deployment (not a test).

    .venv/bin/python -m bench.memory [--requests 100000] [--vehicles 5000] [--json bench/results/memory.json]

On a private redis-server: register a fleet, let one gatekeeper worker decide `--requests` requests, trim the
requests stream (as the worker does every FLEETGATE_TRIM_INTERVAL_MS), then measure `used_memory` and split it
into the decisions stream (kept up to FLEETGATE_DECISIONS_MAXLEN entries) and the dedupe records (a field per
request id in the dedupe window's bucket hashes, kept FLEETGATE_DEDUPE_WINDOW_S and up to a quarter more).
Prints a table and the sizing formula's two coefficients.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from bench.results import write_results
from bench.workload import fill, register_fleet, request_payloads
from devtools.workers import fleetgate_env, start_worker_process
from services.keyspace import Keys
from services.local_redis import start_redis_server
from services.redis_client import Client, connect

PREFIX = "membench"


async def used_memory(redis: Client) -> int:
    return int((await redis.info("memory"))["used_memory"])


async def measure(args: argparse.Namespace, directory: Path) -> dict[str, float]:
    server = start_redis_server(directory)
    redis = connect(server.url)
    keys = Keys(PREFIX)
    try:
        pairs = await register_fleet(redis, keys, args.vehicles, seed=1)
        await redis.xgroup_create(keys.requests, "gatekeeper", id="0", mkstream=True)
        registry_bytes = await used_memory(redis)
        await fill(redis, keys.requests, request_payloads(pairs, args.requests, seed=2))
        worker = start_worker_process(fleetgate_env(server.url, PREFIX, trim_interval_ms=100_000))
        try:
            while int(await redis.xlen(keys.decisions)) < args.requests * 0.98:  # duplicates are not decided
                await asyncio.sleep(0.2)
            await asyncio.sleep(1)
        finally:
            worker.terminate()
            await asyncio.to_thread(worker.wait, 30)
        await redis.xtrim(keys.requests, maxlen=0)  # all acknowledged: what the worker's trimming leaves
        decided = int(await redis.xlen(keys.decisions))
        total = await used_memory(redis) - registry_bytes
        decisions = int(await redis.memory_usage(keys.decisions, samples=0) or 0)
        buckets = [key async for key in redis.scan_iter(match=keys.shard(0).decided_prefix + "*", count=5000)]
        recorded = sum([int(await redis.memory_usage(key, samples=0) or 0) for key in buckets])
        per_key = recorded / decided
        return {
            "requests sent": args.requests,
            "decisions": decided,
            "bytes per decided request (used_memory)": total / decided,
            "of which decisions stream (MEMORY USAGE)": decisions / decided,
            "of which dedupe record (MEMORY USAGE of the buckets)": per_key,
            "the rest: allocator": (total - decisions) / decided - per_key,
        }
    finally:
        await redis.aclose()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--vehicles", type=int, default=5000)
    parser.add_argument("--json", type=Path, default=Path("bench/results/memory.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleetgate-membench-") as directory:
        figures = asyncio.run(measure(args, Path(directory)))
    for name, value in figures.items():
        print(f"{name:50s} {value:>12,.0f}")
    write_results(args.json, {"memory": figures})


if __name__ == "__main__":
    main()
