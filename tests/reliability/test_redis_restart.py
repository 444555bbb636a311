"""Redis restarts mid-run: workers and producers reconnect with backoff; with AOF `always`, nothing is lost."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from services.gatekeeper.worker import Gatekeeper
from services.local_redis import RedisServer, start_redis_server
from services.redis_client import connect
from services.registry import Keys
from services.settings import Settings
from tests.reliability.workers import decided_ids, publish, reconnected, start_worker, stop, wait_for_decisions

pytestmark = [pytest.mark.reliability, pytest.mark.redis]

REQUESTS = 20_000
TIMINGS = {"min_idle_ms": "1000", "reclaim_interval_ms": "250", "batch_size": "200"}
AOF_ALWAYS = ("--appendonly", "yes", "--appendfsync", "always")


def crash_and_restart(server: RedisServer, directory: Path, *persistence: str) -> RedisServer:
    """SIGKILL (no chance to flush anything), then a new server on the same port and directory."""
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)
    return start_redis_server(directory, *persistence, port=server.port)


@pytest.mark.timeout(180)
async def test_a_redis_crash_with_aof_always_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """Kill -9 Redis halfway through 20,000 requests and start it again: each request decided exactly once."""
    server = start_redis_server(tmp_path, *AOF_ALWAYS)
    keys = Keys("restart")
    redis = connect(server.url)
    workers = [start_worker(server.url, keys, **TIMINGS) for _ in range(2)]
    try:
        await publish(redis, keys, 0, REQUESTS // 2)
        assert await wait_for_decisions(redis, keys, 2000, timeout=30) >= 2000  # mid-run: work in flight
        server = crash_and_restart(server, tmp_path, *AOF_ALWAYS)
        await publish(redis, keys, REQUESTS // 2, REQUESTS // 2)  # the client reconnects by itself
        assert await wait_for_decisions(redis, keys, REQUESTS, timeout=90) >= REQUESTS
        await asyncio.sleep(1.5)  # late duplicates would show now
        decided = await decided_ids(redis, keys)
        assert len(decided) == REQUESTS
        assert set(decided.values()) == {1}
        assert (await redis.xpending(keys.requests, "gatekeeper"))["pending"] == 0
        assert await asyncio.to_thread(stop, workers) == [0, 0]  # they survived the outage
    finally:
        stop(workers)
        await redis.aclose()
        server.stop()


@pytest.mark.timeout(60)
async def test_a_worker_recreates_its_group_after_redis_lost_everything(tmp_path: Path) -> None:
    """Without persistence a restart loses the stream and group: the worker creates them again and goes on."""
    server = start_redis_server(tmp_path)
    redis = connect(server.url)
    keys = Keys("amnesia")
    settings = Settings(redis_url=server.url, key_prefix=keys.prefix, block_ms=50)
    gatekeeper = Gatekeeper(settings, connect(server.url))
    await gatekeeper.ensure_group()
    consuming = asyncio.create_task(gatekeeper.consume())
    try:
        await publish(redis, keys, 0, 10)
        assert await wait_for_decisions(redis, keys, 10, timeout=10) == 10
        server = crash_and_restart(server, tmp_path)
        await reconnected(redis)
        assert await redis.exists(keys.requests) == 0  # everything is gone
        await publish(redis, keys, 10, 10)
        assert await wait_for_decisions(redis, keys, 10, timeout=20) == 10  # the new ones are decided
    finally:
        gatekeeper.stop()
        await asyncio.wait_for(consuming, timeout=10)
        await gatekeeper.redis.aclose()
        await redis.aclose()
        server.stop()
