"""The gatekeeper as a process (`fleetgate gatekeeper run`) on a real redis-server: SIGTERM and kill -9."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.local_redis import RedisServer, free_port
from services.registry import Keys

pytestmark = pytest.mark.redis

FLEETGATE = str(Path(sys.executable).with_name("fleetgate"))


def start_worker(redis_server: RedisServer, keys: Keys, **settings: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "FLEETGATE_REDIS_URL": redis_server.url,
        "FLEETGATE_KEY_PREFIX": keys.prefix,
        "FLEETGATE_BLOCK_MS": "100",
        **{f"FLEETGATE_{name.upper()}": value for name, value in settings.items()},
    }
    return subprocess.Popen(
        [FLEETGATE, "gatekeeper", "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def publish(redis: Redis, keys: Keys, count: int, first: int = 0) -> None:
    """Publish requests r<first> .. r<first + count - 1>."""
    for start in range(first, first + count, 1000):
        async with redis.pipeline(transaction=False) as pipe:
            for n in range(start, min(start + 1000, first + count)):
                body = {
                    "request_id": f"r{n}",
                    "connection_id": "c-unknown",
                    "vehicle_id": "v-unknown",
                    "kind": "signal",
                    "target": "odometer-traveleddistance",
                    "issued_at": "2026-11-28T12:00:00Z",
                }
                pipe.xadd(keys.requests, {"data": json.dumps(body)})
            await pipe.execute()


async def wait_for_decisions(redis: Redis, keys: Keys, count: int, timeout: float) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (have := await redis.xlen(keys.decisions)) < count and loop.time() < deadline:
        await asyncio.sleep(0.05)
    return int(have)


async def decided_request_ids(redis: Redis, keys: Keys) -> Counter[str]:
    entries = await redis.xrange(keys.decisions) or []
    return Counter(json.loads((fields or {})[b"data"])["request_id"] for _, fields in entries)


async def test_sigterm_finishes_the_batch_and_leaves_nothing_pending(
    redis: Redis, keys: Keys, redis_server: RedisServer
) -> None:
    """SIGTERM mid-stream: the worker exits 0, every entry it read is decided and acknowledged."""
    worker = start_worker(redis_server, keys, batch_size="50")
    try:
        await publish(redis, keys, 20_000)
        assert await wait_for_decisions(redis, keys, 500, timeout=30) >= 500
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.wait, 30) == 0
    finally:
        worker.kill()
    (group,) = await redis.xinfo_groups(keys.requests)
    assert group["pending"] == 0
    decided = await decided_request_ids(redis, keys)
    assert len(decided) == group["entries-read"]  # everything it read was decided, once
    assert set(decided.values()) == {1}


async def test_kill_9_mid_run_loses_and_duplicates_nothing(redis: Redis, keys: Keys, redis_server: RedisServer) -> None:
    """kill -9 a worker with a batch in hand, start another: each request decided exactly once, none pending."""
    timings = {"min_idle_ms": "500", "reclaim_interval_ms": "200", "batch_size": "100"}
    first = start_worker(redis_server, keys, **timings)
    await publish(redis, keys, 2000)
    published = 2000
    assert await wait_for_decisions(redis, keys, 1000, timeout=30) >= 1000  # it is up and reading
    # Keep a backlog coming and freeze the worker until it is caught with a batch read but not yet
    # decided; kill -9 then leaves those entries pending, for the second worker to reclaim.
    for _ in range(200):
        await publish(redis, keys, 1000, first=published)
        published += 1000
        first.send_signal(signal.SIGSTOP)
        await asyncio.sleep(0.05)  # let Redis finish a script the worker sent just before it froze
        if (await redis.xpending(keys.requests, "gatekeeper"))["pending"] > 0:
            break
        first.send_signal(signal.SIGCONT)
    first.kill()
    await asyncio.to_thread(first.wait, 10)
    assert (await redis.xpending(keys.requests, "gatekeeper"))["pending"] > 0
    await publish(redis, keys, 5000, first=published)  # and more after the crash
    published += 5000
    second = start_worker(redis_server, keys, **timings)
    try:
        assert await wait_for_decisions(redis, keys, published, timeout=60) == published
        await asyncio.sleep(1.0)  # anything late or duplicated would show up now
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.to_thread(second.wait, 30)
    decided = await decided_request_ids(redis, keys)
    assert len(decided) == published
    assert set(decided.values()) == {1}
    assert (await redis.xpending(keys.requests, "gatekeeper"))["pending"] == 0
    assert await redis.xlen(keys.deadletter) == 0


async def test_metrics_endpoint_counts_the_decisions(redis: Redis, keys: Keys, redis_server: RedisServer) -> None:
    """With FLEETGATE_METRICS_PORT set, /metrics serves the worker's counters over HTTP."""
    port = free_port()
    worker = start_worker(redis_server, keys, metrics_port=str(port))
    try:
        await publish(redis, keys, 300)
        assert await wait_for_decisions(redis, keys, 300, timeout=30) == 300
        url = f"http://127.0.0.1:{port}/metrics"
        text = (await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())).decode()
    finally:
        worker.send_signal(signal.SIGTERM)
        await asyncio.to_thread(worker.wait, 30)
    # Every request names an unknown connection: 300 UNAUTHORIZED decisions.
    assert 'fleetgate_decisions_total{outcome="UNAUTHORIZED"} 300.0' in text
    assert "fleetgate_batch_size_sum 300.0" in text
