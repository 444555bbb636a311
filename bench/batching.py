"""How one gatekeeper process batches a steady load, on a private redis-server (not a test):

    .venv/bin/python -m bench.batching [--rate 50000] [--requests 500000] [--runs 2]
        [--json bench/results/batching.json]

Each run: a fleet of 10,000 connected vehicles, one `fleetgate gatekeeper run` process (warmed with one request per
vehicle), then `--requests` requests at `--rate` per second from the open-loop generator (bench/open_loop.py), and
the worker's batch-size histogram (its Prometheus metrics) scraped at the end. Reported per run: the latency from
XADD to the decision read back (p50 / p99 / max), how many batches the load took, and the share of them that held
a single entry (each costs two round trips for one decision). The generator shares the machine's 2 cores with the
worker and Redis: compare runs made side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.open_loop import open_loop
from bench.results import write_results
from bench.workload import fill, one_request_per_pair, register_fleet, request_payloads
from devtools.workers import fleetgate_env, start_worker_process, stop
from services.keyspace import Keys
from services.local_redis import start_redis_server
from services.redis_client import connect
from services.streams import last_id

VEHICLES = 10_000
METRICS_PORT = 9871


def _batches(metrics: str) -> tuple[float, float]:
    """(batches, batches of at most one entry) from the worker's metrics text."""
    count = float(re.search(r"^fleetgate_batch_size_count (\S+)$", metrics, re.M)[1])  # type: ignore[index]
    single = float(re.search(r'^fleetgate_batch_size_bucket\{le="1.0"\} (\S+)$', metrics, re.M)[1])  # type: ignore[index]
    return count, single


async def one_run(rate: float, requests: int, run: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        server = start_redis_server(Path(directory))
        redis = connect(server.url)
        keys = Keys(f"batching{run}")
        try:
            pairs = await register_fleet(redis, keys, VEHICLES, seed=1)
            await fill(redis, keys.requests, one_request_per_pair(pairs, "warm"))
            env = fleetgate_env(server.url, keys.prefix, metrics_port=METRICS_PORT)
            worker = start_worker_process(env)
            try:
                while await redis.xlen(keys.decisions) < len(pairs):
                    await asyncio.sleep(0.1)
                warm_count, warm_single = _batches(_scrape())
                last = await last_id(redis, keys.decisions)
                payloads = request_payloads(pairs, requests, seed=3, run=f"r{run}")
                sent, received, generator_cpu = await open_loop(
                    server.port, keys, payloads, rate=rate, start_after=last, timeout=60
                )
                count, single = _batches(_scrape())
            finally:
                stop([worker])
        finally:
            await redis.aclose()
            server.stop()
    latencies = sorted((received[k] - sent[k]) * 1000 for k in sent)
    batches, singles = count - warm_count, single - warm_single
    return {
        "rate": rate,
        "requests": requests,
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[int(len(latencies) * 0.99)],
        "max_ms": latencies[-1],
        "batches": batches,
        "single_entry_share": singles / batches if batches else 0.0,
        "generator_cpu_percent": generator_cpu,
    }


def _scrape() -> str:
    return str(urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=5).read().decode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50_000)
    parser.add_argument("--requests", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--json", type=Path, default=Path("bench/results/batching.json"))
    args = parser.parse_args()
    runs = [asyncio.run(one_run(args.rate, args.requests, n)) for n in range(args.runs)]
    table = Table(title=f"One gatekeeper process at {args.rate:,.0f} requests/s")
    for column in ("run", "p50 ms", "p99 ms", "max ms", "batches", "single-entry batches", "generator CPU %"):
        table.add_column(column, justify="right")
    for n, run in enumerate(runs, 1):
        table.add_row(
            str(n),
            f"{run['p50_ms']:.1f}",
            f"{run['p99_ms']:.1f}",
            f"{run['max_ms']:.1f}",
            f"{run['batches']:,.0f}",
            f"{run['single_entry_share']:.0%}",
            f"{run['generator_cpu_percent']:.0f}",
        )
    Console().print(table)
    write_results(args.json, {"benchmark": "batching", "command": " ".join(sys.argv), "runs": runs})


if __name__ == "__main__":
    main()
