"""The dashboard's live decisions feed under load, on a private redis-server (not a test):

    .venv/bin/python -m bench.live_feed [--rate 10000] [--seconds 20] [--subscribers 1,5] [--shards 1]
        [--json bench/results/live_feed.json]

For each subscriber count: this process runs `fleetgate serve`'s hub (services/http/live_hub.py) with that many
subscribers of the first two of five apps (various filters), each read as the event stream reads it, while a
producer process XADDs pre-encoded decisions (the gatekeeper's encoder; a mix of five apps and every outcome) at
`--rate` per second for `--seconds`. Reported: this process's CPU over the run (the serve side: the reader, the
ticks, the subscribers' messages) as % of one core and µs per decision read, redis-server's CPU, the messages each
subscriber got per second, and whether every subscriber's counts add up to exactly what was written for its app
and filter. The producer runs on the same 2 cores: read the figures as orders of magnitude.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from bench.proc import cpu_seconds
from bench.results import write_results
from devtools.decisions import decision_payloads
from services.http.live_hub import LiveHub, Subscriber
from services.http.live_window import LiveFilter, decode_decision
from services.keyspace import Keys
from services.local_redis import RedisServer, start_redis_server
from services.redis_client import connect

APPS = [f"bench-app-{n}" for n in range(5)]
PAYLOADS = 50_000
SEED = 4
SLOT_S = 0.01
FILTERS = [
    ("bench-app-0", LiveFilter()),
    ("bench-app-0", LiveFilter.parse(["ALLOWED"], "", "")),
    ("bench-app-1", LiveFilter.parse(["PERMISSION_DENIED", "UNAUTHORIZED"], "", "")),
    ("bench-app-0", LiveFilter.parse([], "odometer", "")),
    ("bench-app-1", LiveFilter.parse([], "", "v1")),
]


def produce(url: str, prefix: str, shards: int, rate: int, seconds: float) -> None:
    """The producer process: `rate` decisions a second, in slots of SLOT_S, each slot one pipeline of XADDs."""
    keys = Keys(prefix, shards)
    payloads = decision_payloads(APPS, PAYLOADS, seed=SEED)
    streams = [keys.shard_of_vehicle(decode_decision(p).vehicle_id or "").decisions for p in payloads]
    client = redis.Redis.from_url(url)
    per_slot, total = max(1, round(rate * SLOT_S)), round(rate * seconds)
    started, written = time.perf_counter(), 0
    while written < total:
        pipe = client.pipeline(transaction=False)
        for n in range(written, min(total, written + per_slot)):
            pipe.xadd(streams[n % PAYLOADS], {"data": payloads[n % PAYLOADS]})
        written += len(pipe.command_stack)
        pipe.execute()
        time.sleep(max(0.0, started + written / rate - time.perf_counter()))


def expected(total: int) -> list[Counter[str]]:
    """What each subscriber of FILTERS should count when the producer wrote `total` decisions."""
    decisions = [decode_decision(p) for p in decision_payloads(APPS, PAYLOADS, seed=SEED)]
    counts: list[Counter[str]] = [Counter() for _ in FILTERS]
    for n in range(total):
        decision = decisions[n % PAYLOADS]
        for i, (app_id, live_filter) in enumerate(FILTERS):
            if decision.app_id == app_id and live_filter.admits(decision):
                counts[i][decision.outcome] += 1
    return counts


async def drain(subscriber: Subscriber, counts: Counter[str], received: list[int]) -> None:
    """Read a subscriber's messages as the event stream does (they are JSON only for the counting)."""
    while (message := await subscriber.next(15.0)) is not None:
        if message:
            received[0] += 1
            counts.update({o: n for o, n in _counts(message).items() if n})


def _counts(message: bytes) -> dict[str, int]:
    parsed: dict[str, int] = json.loads(message.removeprefix(b"data: "))["counts"]
    return parsed


async def _until(done: Callable[[], bool], producer: subprocess.Popen[bytes]) -> None:
    while not done():
        await asyncio.sleep(0.01)
        if producer.poll() not in (None, 0):
            raise RuntimeError("the producer failed")


async def one_round(server: RedisServer, args: argparse.Namespace, subscribers: int) -> dict[str, Any]:
    prefix = f"live{subscribers}"
    keys = Keys(prefix, args.shards)
    client = connect(server.url)
    hub = LiveHub(client, keys)
    try:
        subs = [await hub.subscribe(app_id, live_filter) for app_id, live_filter in FILTERS[:subscribers]]
        counts: list[Counter[str]] = [Counter() for _ in subs]
        received = [[0] for _ in subs]
        readers = [asyncio.create_task(drain(s, c, r)) for s, c, r in zip(subs, counts, received, strict=True)]
        total = round(args.rate * args.seconds)
        command = [sys.executable, "-m", "bench.live_feed", "--produce", server.url, prefix]
        command += [str(args.shards), str(args.rate), str(args.seconds)]
        producer = subprocess.Popen(command)
        await _until(lambda: hub.decisions_read > 0, producer)  # the producer's start-up is not timed
        me, redis_pid = os.getpid(), server.process.pid
        cpu, redis_cpu, started = cpu_seconds(me), cpu_seconds(redis_pid), time.perf_counter()
        timed_from, messages_before = hub.decisions_read, [r[0] for r in received]
        await _until(lambda: hub.decisions_read >= total, producer)  # every decision read: serve is done with them
        wall = time.perf_counter() - started
        messages = [r[0] - before for r, before in zip(received, messages_before, strict=True)]
        used, redis_used = cpu_seconds(me) - cpu, cpu_seconds(redis_pid) - redis_cpu
        timed = total - timed_from
        await asyncio.sleep(2.5 * hub.tick_s)  # the last windows' messages
        await hub.stop()
        await asyncio.gather(*readers)
        producer.wait(30)
    finally:
        await client.aclose()
    want = expected(total)[:subscribers]
    return {
        "subscribers": subscribers,
        "decisions": total,
        "seconds": wall,
        "decisions/s": timed / wall,
        "serve CPU %": 100 * used / wall,
        "serve CPU us/decision": 1e6 * used / timed,
        "redis CPU %": 100 * redis_used / wall,
        "messages/s per subscriber": [n / wall for n in messages],
        "counts match": counts == want,
    }


async def measure(args: argparse.Namespace, directory: Path) -> list[dict[str, Any]]:
    server = start_redis_server(directory)
    try:
        return [await one_round(server, args, n) for n in args.subscribers]
    finally:
        server.stop()


def main() -> None:
    if len(sys.argv) == 7 and sys.argv[1] == "--produce":
        url, prefix, shards, rate, seconds = sys.argv[2:]
        produce(url, prefix, int(shards), int(rate), float(seconds))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--subscribers", type=lambda s: [int(n) for n in s.split(",")], default=[1, 5])
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--json", type=Path, default=Path("bench/results/live_feed.json"))
    args = parser.parse_args()
    if not all(1 <= n <= len(FILTERS) for n in args.subscribers):
        parser.error(f"--subscribers: each between 1 and {len(FILTERS)}")
    with tempfile.TemporaryDirectory(prefix="fleetgate-livebench-") as directory:
        rounds = asyncio.run(measure(args, Path(directory)))
    print(f"{'subscribers':>11s} {'decisions/s':>12s} {'serve CPU %':>12s} {'µs/decision':>12s} "
          f"{'redis CPU %':>12s} {'msg/s/subscriber':>17s} {'counts match':>13s}")  # fmt: skip
    for r in rounds:
        per_subscriber = max(r["messages/s per subscriber"])
        print(f"{r['subscribers']:>11d} {r['decisions/s']:>12,.0f} {r['serve CPU %']:>12.1f} "
              f"{r['serve CPU us/decision']:>12.2f} {r['redis CPU %']:>12.1f} {per_subscriber:>17.2f} "
              f"{'yes' if r['counts match'] else 'NO':>13s}")  # fmt: skip
    write_results(args.json, {"rate": args.rate, "seconds": args.seconds, "shards": args.shards, "rounds": rounds})


if __name__ == "__main__":
    main()
