"""The gatekeeper's per-entry CPU without its I/O, in this process (not a test):

    .venv/bin/python -m bench.hot_path [--requests 100000] [--vehicles 10000] [--rounds 7]
        [--json bench/results/hot_path.json]

`Gatekeeper.process` on batches of 500 of bench.gatekeeper's requests, with its registry cache warm (a private
redis-server holds the fleet; a warm-up batch per vehicle fills the cache) and the COMMIT script replaced by a
stand-in that packs the command's arguments, as the transport would before sending them, and answers every entry
as published. What is left is the Python of a decision: decode, cache lookups, decide(), the decision's JSON, the
packing, the batch's bookkeeping. Reported: CPU µs per entry (this process's CPU time), median (min-max) of the
rounds.

For comparing two versions of that code side by side: no Redis, no other process, no network, so it swings much
less than `bench.gatekeeper`'s drains (about ±10 % between rounds on the shared 2-core VM, where a drain's
msg/s swings ±30 %). It leaves out what a drain adds: reading the entries, the round trips, the event loop
between batches, and Redis's own CPU.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from bench.gatekeeper_report import cell, spread
from bench.private_server import on_private_server
from bench.results import write_results
from bench.workload import one_request_per_pair, register_fleet, request_payloads
from services.gatekeeper.resp import Arg, Entry, PackedTail, pack_command
from services.gatekeeper.worker import Gatekeeper
from services.local_redis import RedisServer
from services.redis_client import connect
from services.settings import Settings

BATCH = 500
PREFIX = "bench"


class PackingCommit:
    """Stands in for the COMMIT script: packs the command the transport would send, and answers every entry as
    published."""

    async def __call__(self, keys: list[str], args: list[Arg], tail: PackedTail | None = None) -> bytes:
        pack_command(["EVALSHA", "0" * 40, len(keys), *keys, *args], tail)
        return b"1" * ((tail.count if tail is not None else 0) // 3)


def batches(payloads: list[bytes], run: str) -> list[list[Entry]]:
    entries = [(f"{run}-{n}".encode(), {b"data": payload}) for n, payload in enumerate(payloads, start=1)]
    return [entries[start : start + BATCH] for start in range(0, len(entries), BATCH)]


async def measure(server: RedisServer, args: argparse.Namespace) -> dict[str, Any]:
    redis = connect(server.url)
    try:
        settings = Settings(redis_url=server.url, key_prefix=PREFIX)
        pairs = await register_fleet(redis, settings.keys, args.vehicles, 7)
        gatekeeper = Gatekeeper(settings, redis)
        shard = gatekeeper.shards[0]
        for batch in batches(one_request_per_pair(pairs, run="warm"), "1"):
            await gatekeeper.process(batch, shard)  # fills the cache from Redis, with the real COMMIT
        shard.commit = PackingCommit()  # type: ignore[assignment]  # what is left runs without Redis
        timed = batches(request_payloads(pairs, args.requests, 7, "hot"), "2")
        rounds = []
        for number in range(args.rounds):
            started = time.process_time()
            for batch in timed:
                await gatekeeper.process(batch, shard)
            rounds.append((time.process_time() - started) / args.requests * 1e6)
            print(f"round {number + 1}/{args.rounds}: {rounds[-1]:.2f} µs/entry", flush=True)
    finally:
        await redis.aclose()
    figure = spread(rounds)
    title = f"Gatekeeper.process without I/O, CPU µs per entry, median (min-max) of {args.rounds} rounds"
    print(f"\n{title}: {cell(figure, 2)}")
    return {"µs/entry": figure, "rounds": rounds, "settings": vars(args) | {"json": str(args.json)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--vehicles", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", type=Path, default=Path("bench/results/hot_path.json"))
    args = parser.parse_args()
    write_results(args.json, on_private_server(lambda server: measure(server, args)))


if __name__ == "__main__":
    main()
