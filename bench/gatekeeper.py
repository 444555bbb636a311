"""Gatekeeper benchmark on a private redis-server, side by side in one run (not a test):

    .venv/bin/python -m bench.gatekeeper [--requests 200000] [--vehicles 10000] [--repeat 3]
        [--contenders redis-py,FastStream,x2] [--latency-seconds 10 (0: none)] [--memory-requests 1000000 (0: none)]
        [--json bench/results/gatekeeper.json]

1. Drain a pre-filled `requests` stream of realistic requests with: the ceiling loop, a redis-py loop, FastStream's
   default subscriber (on a smaller subset: it is slow), FastStream's batch subscriber, and `fleetgate gatekeeper
   run` with one and two processes; each on a fresh stream, the whole set `--repeat` times (rounds), the order of
   the contenders rotated from round to round so that the machine's drift hits them alike.
   Reports per contender msg/s and the CPU microseconds per message of the worker (this process's CPU time for
   the in-process loops, the gatekeeper processes' together), of redis-server, and their sum, over the timed
   drain; and msg/s over the gatekeeper x1's in the same round (`x gatekeeper`). Each as the median of the rounds
   and their spread (min-max); then the gatekeeper x1 over the ceiling: the rounds' ratios of msg/s and of sum
   µs/msg. CPU per message leaves out the time a process waited for a core, which msg/s includes (on a shared
   2-core machine msg/s swings ±30 % between runs). The JSON keeps every round's figures (CPU seconds, CPU %, ...)
   besides the medians and spreads: `python -m bench.compare A.json B.json` compares two runs.
2. Open-loop load at 25 %, 50 % and 75 % of one gatekeeper process's measured maximum (its median msg/s above):
   latency from a request's XADD to its decision being read back, p50/p99/p99.9, with the CPU % of the load
   generator (this process, on bare connections: bench/open_loop.py), the worker and redis-server meanwhile.
3. Worker memory (RSS) across `--memory-requests` requests: at 10 % of the run and at its end.
Everything shares this machine's cores (producer, redis-server, workers); read the figures as ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bench.contenders import BATCH, Drain, Lookups, ceiling, faststream_batch, faststream_default, redis_py_loop
from bench.gatekeeper_report import (
    CEILING,
    GATEKEEPER,
    Figures,
    add_ratios,
    drain_figures,
    drain_table,
    headline,
    summarize,
    table,
    versus_ceiling,
)
from bench.open_loop import open_loop
from bench.proc import cpu_seconds
from bench.results import write_results
from bench.workload import fill, one_request_per_pair, register_fleet, request_payloads
from devtools.workers import fleetgate_env, start_worker_process
from services.keyspace import Keys
from services.local_redis import RedisServer, start_redis_server
from services.redis_client import connect
from services.registry import Registry

PREFIX = "bench"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def fresh_stream(redis: Redis, keys: Keys, payloads: list[bytes], group: str) -> None:
    await redis.delete(keys.requests, keys.decisions)
    await fill(redis, keys.requests, payloads)
    await redis.xgroup_create(keys.requests, group, id="0")


async def time_in_process(server: RedisServer, work: Callable[[], Awaitable[None]], total: int) -> Figures:
    redis_cpu, cpu, started = cpu_seconds(server.process.pid), time.process_time(), time.perf_counter()
    await work()
    wall = time.perf_counter() - started
    return drain_figures(total, wall, time.process_time() - cpu, cpu_seconds(server.process.pid) - redis_cpu)


def start_gatekeepers(server: RedisServer, group: str, count: int) -> list[subprocess.Popen[bytes]]:
    env = fleetgate_env(server.url, PREFIX, group=group)
    return [start_worker_process(env) for _ in range(count)]


async def stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        await asyncio.to_thread(worker.wait, 30)


async def time_gatekeepers(
    redis: Redis, server: RedisServer, keys: Keys, total: int, count: int, *, warm_up: int, group: str
) -> Figures:
    """Time the entries after the first `warm_up` ones: start-up and cache filling are not counted.

    (The other contenders are handed every connection and vehicle in memory before they start.) The clock starts
    once the warm-up is decided; what was decided by then, a few hundred entries, is not counted either.
    """
    workers = start_gatekeepers(server, group, count)
    try:
        while await redis.xlen(keys.decisions) < warm_up:
            if any(w.poll() is not None for w in workers):
                raise RuntimeError("a gatekeeper process exited before warming up")
            await asyncio.sleep(0.005)
        cpu = [cpu_seconds(w.pid) for w in workers]
        redis_cpu, started = cpu_seconds(server.process.pid), time.perf_counter()
        before = await redis.xlen(keys.decisions)
        while (decided := await redis.xlen(keys.decisions)) < warm_up + total:
            await asyncio.sleep(0.01)
        wall = time.perf_counter() - started
        used = sum(cpu_seconds(w.pid) - c for w, c in zip(workers, cpu, strict=True))
        return drain_figures(decided - before, wall, used, cpu_seconds(server.process.pid) - redis_cpu)
    finally:
        await stop(workers)


async def load_lookups(registry: Registry, pairs: list[tuple[str, str]]) -> Lookups:
    """Every connection and vehicle in memory, for the contenders that do not cache by themselves."""
    connections, vehicles = {}, {}
    for vehicle_id, connection_id in pairs:
        connection, vehicle = await registry.lookup(connection_id, vehicle_id)
        if connection is not None and vehicle is not None:
            connections[connection_id], vehicles[vehicle_id] = connection, vehicle
    return connections, vehicles


def contenders(
    args: argparse.Namespace, redis: Redis, server: RedisServer, pairs: list[tuple[str, str]], lookups: Lookups
) -> dict[str, Callable[[str], Awaitable[Figures]]]:
    """Each contender's drain on a fresh stream, given a tag unique to the round (its group and request ids:
    the gatekeeper dedupes request ids across rounds)."""
    keys = Keys(PREFIX)
    n, small = args.requests, args.faststream_requests

    def in_process(count: int, loop: Callable[[Drain], Awaitable[None]]) -> Callable[[str], Awaitable[Figures]]:
        async def run(tag: str) -> Figures:
            await fresh_stream(redis, keys, request_payloads(pairs, count, args.seed, tag), tag)
            drain = Drain(keys.requests, tag, keys.decisions, count)
            return await time_in_process(server, lambda: loop(drain), count)

        return run

    def gatekeepers(count: int) -> Callable[[str], Awaitable[Figures]]:
        async def run(tag: str) -> Figures:
            warm_up = one_request_per_pair(pairs, run=f"warm-{tag}")
            await fresh_stream(redis, keys, warm_up + request_payloads(pairs, n, args.seed, tag), tag)
            return await time_gatekeepers(redis, server, keys, n, count, warm_up=len(warm_up), group=tag)

        return run

    every = {
        CEILING: in_process(n, lambda drain: ceiling("127.0.0.1", server.port, drain)),
        "redis-py loop (pipeline per batch)": in_process(n, lambda drain: redis_py_loop(redis, drain, lookups)),
        f"FastStream default subscriber ({small:,} msgs)": in_process(
            small, lambda drain: faststream_default(server.url, drain, lookups)
        ),
        f"FastStream batch subscriber (max_records={BATCH})": in_process(
            n, lambda drain: faststream_batch(server.url, drain, lookups)
        ),
        GATEKEEPER: gatekeepers(1),
        "fleetgate gatekeeper x2 processes": gatekeepers(2),
    }
    # The ceiling and the gatekeeper x1 always run: the headline is their ratio.
    wanted = [CEILING, GATEKEEPER, *args.contenders]
    return {name: run for name, run in every.items() if any(w.lower() in name.lower() for w in wanted)}


async def throughput(
    args: argparse.Namespace, redis: Redis, server: RedisServer, pairs: list[tuple[str, str]]
) -> dict[str, Any]:
    """Every contender once a round, `args.repeat` rounds, each round starting further down the list."""
    runs = contenders(args, redis, server, pairs, await load_lookups(Registry(redis, Keys(PREFIX)), pairs))
    names = list(runs)
    rounds: list[dict[str, Figures]] = []
    for number in range(args.repeat):
        shift = number * len(names) // args.repeat
        order = names[shift:] + names[:shift]
        round_ = {}
        for position, name in enumerate(order):
            done = round_[name] = await runs[name](f"r{number}c{position}")
            progress = f"{done['msg/s']:,.0f} msg/s, {done['sum µs/msg']:,.1f} µs/msg"
            print(f"round {number + 1}/{args.repeat}: {name}: {progress}", flush=True)
        add_ratios(round_)
        rounds.append(round_)
    return {"rounds": rounds, "summary": summarize(names, rounds), "gatekeeper/ceiling": versus_ceiling(rounds)}


async def latency(
    redis: Redis, server: RedisServer, pairs: list[tuple[str, str]], *, rate: float, seconds: float, seed: int
) -> dict[str, float]:
    """Open-loop load at `rate`/s: XADD time to decision read time, per request."""
    keys = Keys(PREFIX)
    group = f"lat{int(rate)}"
    await redis.delete(keys.requests, keys.decisions)
    await redis.xgroup_create(keys.requests, group, id="0", mkstream=True)
    total = int(rate * seconds)
    payloads = request_payloads(pairs, total, seed, group)
    workers = start_gatekeepers(server, group, 1)
    try:
        # Warm up first: a fresh worker's first sight of each connection and vehicle is a registry read, and
        # the figures are about the steady state. One request per pair, decided before the clock starts.
        warm_up = one_request_per_pair(pairs, run=f"warm{group}")
        await fill(redis, keys.requests, warm_up)
        while await redis.xlen(keys.decisions) < len(warm_up):
            await asyncio.sleep(0.05)
        newest = await redis.xrevrange(keys.decisions, count=1) or []
        start_after: bytes | str = newest[0][0] or "0-0"

        (worker,) = workers
        cpu = (cpu_seconds(worker.pid), cpu_seconds(server.process.pid), time.perf_counter())
        sent, received, bench_cpu = await open_loop(
            server.port, keys, payloads, rate=rate, start_after=start_after, timeout=seconds * 4 + 30
        )
        wall = time.perf_counter() - cpu[2]
        worker_cpu = 100 * (cpu_seconds(worker.pid) - cpu[0]) / wall
        redis_cpu = 100 * (cpu_seconds(server.process.pid) - cpu[1]) / wall
    finally:
        await stop(workers)
    samples = sorted(received[r] - sent[r] for r in received if r in sent)

    def pick(quantile: float) -> float:
        return 1000 * samples[min(len(samples) - 1, int(quantile * len(samples)))]

    return {"rate/s": rate, "requests": len(samples), "p50 ms": pick(0.5), "p99 ms": pick(0.99),
            "p99.9 ms": pick(0.999), "max ms": 1000 * samples[-1], "generator CPU %": bench_cpu,
            "worker CPU %": worker_cpu, "redis CPU %": redis_cpu}  # fmt: skip


async def memory(
    redis: Redis, server: RedisServer, pairs: list[tuple[str, str]], count: int, seed: int
) -> dict[str, float]:
    keys = Keys(PREFIX)
    await redis.delete(keys.requests, keys.decisions)
    await redis.xgroup_create(keys.requests, "mem", id="0", mkstream=True)
    (worker,) = start_gatekeepers(server, "mem", 1)
    samples: list[tuple[int, float]] = []
    try:
        chunk = 50_000
        for start in range(0, count, chunk):
            await fill(
                redis, keys.requests, request_payloads(pairs, min(chunk, count - start), seed + start, f"m{start}")
            )
            samples.append((await redis.xlen(keys.decisions), rss_mib(worker.pid)))
        while (done := await redis.xlen(keys.decisions)) < count:
            samples.append((done, rss_mib(worker.pid)))
            await asyncio.sleep(0.5)
        samples.append((done, rss_mib(worker.pid)))
    finally:
        await stop([worker])
    early = next(rss for decided, rss in samples if decided >= count // 10)
    return {"requests": count, "RSS MiB at 10 %": early, "RSS MiB at end": samples[-1][1],
            "RSS MiB max": max(rss for _, rss in samples), "growth end/10 %": samples[-1][1] / early}  # fmt: skip


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        server = start_redis_server(Path(directory))
        redis = connect(server.url)
        try:
            pairs = await register_fleet(redis, Keys(PREFIX), args.vehicles, args.seed)
            drained = await throughput(args, redis, server, pairs)
            drain_table(
                f"Draining a pre-filled stream of {args.requests:,} requests: median (min-max) of {args.repeat} "
                "rounds; CPU µs per message of the worker process(es) and of redis-server",
                drained["summary"],
            )
            headline(drained["gatekeeper/ceiling"])
            gatekeeper = drained["summary"][GATEKEEPER]["msg/s"]["median"]
            loads: dict[str, Any] = {}
            for share in (0.25, 0.5, 0.75) if args.latency_seconds > 0 else ():
                loads[f"{share:.0%} of max"] = await latency(
                    redis, server, pairs, rate=share * gatekeeper, seconds=args.latency_seconds, seed=args.seed
                )
            if loads:
                table("Open-loop latency, XADD to decision read (1 gatekeeper process)", loads)
            held: dict[str, Any] = {}
            if args.memory_requests > 0:
                held["gatekeeper x1"] = await memory(redis, server, pairs, args.memory_requests, args.seed)
                table("Worker memory", held)
        finally:
            await redis.aclose()
            server.stop()
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    return {"throughput": drained, "latency": loads, "memory": held, "settings": settings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--vehicles", type=int, default=10_000)
    parser.add_argument("--faststream-requests", type=int, default=10_000)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--memory-requests", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="drain rounds (each contender once a round)")
    parser.add_argument(
        "--contenders",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        default=["redis-py", "FastStream", "x2"],
        help="comma-separated parts of the names of the contenders to run besides the ceiling and the gatekeeper x1 "
        "(default: all; '' for only those two)",
    )
    parser.add_argument("--json", type=Path, default=Path("bench/results/gatekeeper.json"))
    args = parser.parse_args()
    write_results(args.json, asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
