"""The vehicles service against the gatekeeper, side by side in one run on a private redis-server (not a test):

    .venv/bin/python -m bench.vehicles [--requests 60000] [--vehicles 5000] [--rounds 3] [--memory-vehicles 100000]

Each round publishes `--requests` realistic requests (bench/workload.py), lets one `fleetgate gatekeeper run`
process decide them, then one `fleetgate vehicles serve` process answer the decisions (the ALLOWED ones get a
response; the others are acknowledged). Both are timed after a warm-up (caches filled, first states created),
with their CPU time and redis-server's, per message. The issue's target: the vehicles service's decisions/s at
least 0.5x the gatekeeper's, so the vehicle side never becomes the pipeline's bottleneck.
Then memory: `--memory-vehicles` states written as the service writes them, `used_memory` per vehicle.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bench.gatekeeper import stop
from bench.proc import cpu_seconds
from bench.results import write_results
from bench.workload import fill, one_request_per_pair, plain_fleet, register_fleet, request_payloads
from devtools.workers import FLEETGATE, fleetgate_env, start_worker_process
from schemas.vehicle import Vehicle
from services.keyspace import Keys
from services.local_redis import RedisServer, start_redis_server
from services.redis_client import connect
from services.registry import Registry
from simulator.vehicles import initial_state

WARM_UP = 0.05
"""The share of the timed requests that are not timed either, after one read per vehicle (not timed: each
vehicle's first state is drawn then, and the worker's caches filled)."""


async def _drain(
    server: RedisServer, process: subprocess.Popen[bytes], done: Any, warm_up: int, total: int
) -> dict[str, float]:
    """Time a process from `warm_up` and WARM_UP of `total` to all of it, as `done()` counts; its CPU and
    redis-server's."""
    warm = warm_up + int(total * WARM_UP)
    total += warm_up
    while await done() < warm:
        if process.poll() is not None:
            raise RuntimeError("the process exited before warming up")
        await asyncio.sleep(0.005)
    start_count = await done()
    cpu, redis_cpu, started = cpu_seconds(process.pid), cpu_seconds(server.process.pid), time.perf_counter()
    while (count := await done()) < total:
        await asyncio.sleep(0.01)
    wall = time.perf_counter() - started
    timed = count - start_count
    return {
        "msg/s": timed / wall,
        "process CPU us/msg": 1e6 * (cpu_seconds(process.pid) - cpu) / timed,
        "redis CPU us/msg": 1e6 * (cpu_seconds(server.process.pid) - redis_cpu) / timed,
    }


async def one_round(redis: Redis, server: RedisServer, prefix: str, args: argparse.Namespace) -> dict[str, Any]:
    keys = Keys(prefix)
    pairs = await register_fleet(redis, keys, args.vehicles, seed=7)
    registry = Registry(redis, keys)
    fleet = [v for v in await registry.vehicles_by_id([vehicle_id for vehicle_id, _ in pairs]) if v is not None]
    # A read the vehicles service answers (a signal the config selects and every vehicle has): a denied one (the
    # fleet's selection is drawn at random) would warm the gatekeeper's caches only, not the vehicles service's.
    selected = sorted(s.code for s in (await registry.config()).signals)
    target = next(code for code in selected if all(code in v.capabilities for v in fleet))
    warm = one_request_per_pair(pairs, f"{prefix}-warm", target)
    await fill(redis, keys.requests, warm + request_payloads(pairs, args.requests, seed=11, run=prefix))
    await write_first_states(redis, keys, fleet)
    env = fleetgate_env(server.url, prefix, sim_speed=60)
    gatekeeper = start_worker_process(env)
    try:

        async def decided() -> int:
            return int(await redis.xlen(keys.decisions))

        decisions = await _drain(server, gatekeeper, decided, len(warm), args.requests)
    finally:
        await stop([gatekeeper])
    service = subprocess.Popen([FLEETGATE, "vehicles", "serve"], env=env, stderr=subprocess.DEVNULL)
    try:

        async def consumed() -> int:
            groups = {g["name"]: g for g in await redis.xinfo_groups(keys.decisions)}
            group = groups.get(b"vehicles")
            return 0 if group is None else int(group["entries-read"] or 0) - int(group["pending"])

        answered = await _drain(server, service, consumed, len(warm), args.requests)
    finally:
        await stop([service])
    responses = int(await redis.xlen(keys.shard(0).responses))
    return {"gatekeeper": decisions, "vehicles": answered, "responses": responses}


async def write_first_states(redis: Redis, keys: Keys, fleet: list[Vehicle]) -> list[int]:
    """Each vehicle's first state, written as the service writes it (a hash: version and encoded state): the
    steady state of a deployment, where every vehicle has been answered before. Returns the encoded sizes."""
    now = time.time()
    sizes = []
    for start in range(0, len(fleet), 2000):
        async with redis.pipeline(transaction=False) as pipe:
            for vehicle in fleet[start : start + 2000]:
                encoded = initial_state(vehicle, 0, now).encode()
                sizes.append(len(encoded))
                pipe.hset(keys.shard(0).vehicle_state_prefix + vehicle.id, mapping={"n": 1, "s": encoded})
            await pipe.execute()
    return sizes


async def memory_per_vehicle(redis: Redis, count: int) -> dict[str, float]:
    """`count` vehicle states as the service stores them: `used_memory` per vehicle."""
    before = int((await redis.info("memory"))["used_memory"])
    sizes = await write_first_states(redis, Keys("mem"), plain_fleet(count, random.Random(3)))
    after = int((await redis.info("memory"))["used_memory"])
    return {
        "vehicles": count,
        "used_memory B/vehicle": (after - before) / count,
        "encoded state B (median)": statistics.median(sizes),
        "encoded state B (max)": max(sizes),
    }


def _summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    def spread(side: str, figure: str) -> dict[str, float]:
        values = [r[side][figure] for r in rounds]
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}

    ratios = [r["vehicles"]["msg/s"] / r["gatekeeper"]["msg/s"] for r in rounds]
    figures = ("msg/s", "process CPU us/msg", "redis CPU us/msg")
    return {side: {figure: spread(side, figure) for figure in figures} for side in ("gatekeeper", "vehicles")} | {
        "vehicles/gatekeeper msg/s": {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}
    }


async def measure(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    server = start_redis_server(directory)
    redis = connect(server.url)
    try:
        rounds = [await one_round(redis, server, f"vb{n}", args) for n in range(args.rounds)]
        memory = await memory_per_vehicle(redis, args.memory_vehicles)
    finally:
        await redis.aclose()
        server.stop()
    return {"rounds": rounds, "summary": _summary(rounds), "memory": memory}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=60_000)
    parser.add_argument("--vehicles", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory-vehicles", type=int, default=100_000)
    parser.add_argument("--json", type=Path, default=Path("bench/results/vehicles.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleetgate-vehbench-") as directory:
        results = asyncio.run(measure(args, Path(directory)))
    summary = results["summary"]
    print(f"{'':28s} {'median':>10s} {'min':>10s} {'max':>10s}")
    for side in ("gatekeeper", "vehicles"):
        for figure, spread in summary[side].items():
            name = f"{side} {figure}"
            print(f"{name:28s} {spread['median']:>10,.1f} {spread['min']:>10,.1f} {spread['max']:>10,.1f}")
    ratio = summary["vehicles/gatekeeper msg/s"]
    print(f"{'vehicles/gatekeeper msg/s':28s} {ratio['median']:>10.2f} {ratio['min']:>10.2f} {ratio['max']:>10.2f}")
    for name, value in results["memory"].items():
        print(f"{name:28s} {value:>10,.0f}")
    write_results(args.json, results)


if __name__ == "__main__":
    main()
