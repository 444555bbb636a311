"""The gatekeeper on one Redis versus a local 3-master Redis Cluster, side by side in one run (not a test):

    .venv/bin/python -m bench.cluster [--requests 100000] [--vehicles 10000] [--shards 6] [--failover]
                                      [--json bench/results/cluster.json]

For each deployment (one redis-server unsharded; three masters with three replicas, `--shards` shards) and 1, 2
and 4 `fleetgate gatekeeper run` processes: drain a pre-filled backlog of realistic requests (after a warm-up
that fills the workers' caches) and report messages/s, the CPU of the workers and of the Redis processes, and
the ratio to one worker on one Redis. Then a paper estimate for 1,000,000 requests/s from the per-core figures.
`--failover` adds the failover runs of devtools/failover.py (a master killed mid-load, its replica cut off
half a second before).

Everything shares this machine's cores: workers, six redis-servers, this process. On a 2-core machine the machine
is the ceiling, and the CPU columns say so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.gatekeeper import stop
from bench.proc import cpu_seconds
from bench.results import write_results
from bench.workload import fill, one_request_per_pair, register_fleet, request_payloads
from devtools.failover import run_failover
from devtools.local_cluster import RedisClusterProcesses, start_redis_cluster
from devtools.workers import fleetgate_env, start_worker_process
from services.keyspace import Keys
from services.local_redis import start_redis_server
from services.redis_client import Client, open_client

TARGET = 1_000_000
WORKER_COUNTS = (1, 2, 4)


@dataclass(frozen=True)
class Deployment:
    name: str
    url: str
    cluster: bool
    keys: Keys
    masters: list[int]
    """PIDs of the processes that take the writes."""
    replicas: list[int]

    def client(self) -> Client:
        return open_client(self.url, cluster=self.cluster)


@contextmanager
def deployments(directory: Path, shards: int) -> Iterator[list[Deployment]]:
    (directory / "single").mkdir()
    server = start_redis_server(directory / "single")
    cluster: RedisClusterProcesses | None = None
    try:
        cluster = start_redis_cluster(directory / "cluster")
        yield [
            Deployment("1 Redis, unsharded", server.url, False, Keys("bench"), [server.process.pid], []),
            Deployment(
                f"cluster, 3 masters + 3 replicas, {shards} shards",
                cluster.all_nodes_url,
                True,
                Keys("bench", shards),
                [node.process.pid for node in cluster.masters],
                [node.process.pid for node in cluster.replicas],
            ),
        ]
    finally:
        server.stop()
        if cluster is not None:
            cluster.stop()


async def prefill(client: Client, keys: Keys, payloads: list[bytes]) -> None:
    """Each payload onto its vehicle's shard's requests stream, with the gatekeeper group created at 0."""
    by_stream: dict[str, list[bytes]] = defaultdict(list)
    for payload in payloads:
        by_stream[keys.shard_of_vehicle(json.loads(payload)["vehicle_id"]).requests].append(payload)
    for shard in keys.all_shards:
        await client.delete(shard.requests, shard.decisions)
        await fill(client, shard.requests, by_stream[shard.requests])
        await client.xgroup_create(shard.requests, "gatekeeper", id="0", mkstream=True)


async def decided(client: Client, keys: Keys) -> int:
    return sum([int(await client.xlen(shard.decisions)) for shard in keys.all_shards])


def start_workers(deployment: Deployment, count: int) -> list[subprocess.Popen[bytes]]:
    env = fleetgate_env(
        deployment.url, deployment.keys.prefix, redis_cluster=deployment.cluster, shards=deployment.keys.shards
    )
    return [start_worker_process(env) for _ in range(count)]


async def drain(
    deployment: Deployment, pairs: list[tuple[str, str]], workers: int, args: argparse.Namespace
) -> dict[str, float]:
    """Time `args.requests` decisions after a warm-up of one request per vehicle (caches filled, not counted)."""
    client = deployment.client()
    try:
        warm_up = one_request_per_pair(pairs, run=f"warm{workers}")
        await prefill(
            client, deployment.keys, warm_up + request_payloads(pairs, args.requests, args.seed, f"r{workers}")
        )
        processes = start_workers(deployment, workers)
        try:
            while await decided(client, deployment.keys) < len(warm_up):
                await asyncio.sleep(0.01)
            pids = [p.pid for p in processes]
            cpu = {pid: cpu_seconds(pid) for pid in pids + deployment.masters + deployment.replicas}
            started = time.perf_counter()
            while (done := await decided(client, deployment.keys) - len(warm_up)) < args.requests:
                await asyncio.sleep(0.02)
            wall = time.perf_counter() - started
            used = {pid: cpu_seconds(pid) - before for pid, before in cpu.items()}
        finally:
            await stop(processes)
    finally:
        await client.aclose()
    return {
        "msg/s": done / wall,
        "workers CPU %": 100 * sum(used[pid] for pid in pids) / wall,
        "masters CPU %": 100 * sum(used[pid] for pid in deployment.masters) / wall,
        "replicas CPU %": 100 * sum(used[pid] for pid in deployment.replicas) / wall,
    }


def estimate(rows: dict[str, dict[str, float]]) -> dict[str, float]:
    """Workers and masters for TARGET requests/s, from the best per-CPU-second figures measured."""
    per_worker_core = max(r["msg/s"] / (r["workers CPU %"] / 100) for r in rows.values())
    per_master_core = max(r["msg/s"] / (r["masters CPU %"] / 100) for r in rows.values() if r["masters CPU %"])
    worker_cores = TARGET / per_worker_core
    master_cores = TARGET / per_master_core
    return {
        "decisions per worker CPU-second": per_worker_core,
        "decisions per Redis master CPU-second": per_master_core,
        "worker cores for 1M/s": worker_cores,
        "Redis masters for 1M/s (one core each)": master_cores,
    }


def table(title: str, rows: dict[str, dict[str, float]]) -> None:
    columns = list(next(iter(rows.values())))
    print(f"\n{title}")
    print(f"{'':<56}" + "".join(f"{c:>20}" for c in columns))
    for name, row in rows.items():
        print(f"{name:<56}" + "".join(f"{row[c]:>20,.2f}" for c in columns))


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as directory, deployments(Path(directory), args.shards) as targets:
        rows: dict[str, dict[str, float]] = {}
        for deployment in targets:
            client = deployment.client()
            try:
                pairs = await register_fleet(client, deployment.keys, args.vehicles, args.seed)
            finally:
                await client.aclose()
            for workers in WORKER_COUNTS:
                name = f"{deployment.name}, {workers} worker(s)"
                rows[name] = await drain(deployment, pairs, workers, args)
                print(f"  {name}: {rows[name]['msg/s']:,.0f} msg/s")
        base = next(iter(rows.values()))["msg/s"]
        for row in rows.values():
            row["x 1 Redis, 1 worker"] = row["msg/s"] / base
        table(f"Draining {args.requests:,} requests ({os.cpu_count()} CPUs on this machine)", rows)
        results["throughput"] = rows
        results["estimate"] = estimate(rows)
        print("\nPaper estimate for 1,000,000 requests/s, from the best per-CPU-second figures above")
        for name, value in results["estimate"].items():
            print(f"  {name:<44}{value:>12,.1f}")
    if args.failover:
        results["failover"] = {}
        for wait_backed in (False, True):
            with tempfile.TemporaryDirectory() as directory:
                cluster = start_redis_cluster(Path(directory))
                try:
                    outcome = await run_failover(cluster, wait_backed=wait_backed, replica_lag_s=0.5)
                finally:
                    cluster.stop()
            print("\n" + "\n".join(f"{name:<42} {value}" for name, value in outcome.table()))
            results["failover"]["wait-backed" if wait_backed else "plain"] = outcome.__dict__
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--vehicles", type=int, default=10_000)
    parser.add_argument("--shards", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--failover", action="store_true")
    parser.add_argument("--json", type=Path, default=Path("bench/results/cluster.json"))
    args = parser.parse_args()
    write_results(args.json, asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
