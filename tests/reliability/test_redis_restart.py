"""Redis restarts mid-run: workers and producers reconnect with backoff; with AOF `always`, nothing is lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from devtools.crash_scenarios import crash_redis, kill_and_restart
from devtools.workers import publish, reconnected, wait_for_decisions
from services.gatekeeper.worker import Gatekeeper
from services.keyspace import Keys
from services.local_redis import start_redis_server
from services.redis_client import connect
from services.settings import Settings

# `redis` by hand: each test starts (and kills) a redis-server of its own, not through a fixture.
pytestmark = [pytest.mark.reliability, pytest.mark.redis]


@pytest.mark.timeout(180)
async def test_a_redis_crash_with_aof_always_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """Kill -9 Redis with 20,000 requests in flight and start it again: each request decided exactly once."""
    outcome = await crash_redis(tmp_path, "AOF always", requests=20_000)
    assert (outcome.lost, outcome.duplicated, outcome.pending, outcome.dead_letters) == (0, 0, 0, 0)


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
        server = kill_and_restart(server, tmp_path, ())
        await reconnected(redis)
        # Everything is gone: the decisions (the requests stream may already be back, made by the worker's new group).
        assert await redis.exists(keys.decisions) == 0
        await publish(redis, keys, 10, 10)
        assert await wait_for_decisions(redis, keys, 10, timeout=20) == 10  # the new ones are decided
    finally:
        gatekeeper.stop()
        await asyncio.wait_for(consuming, timeout=10)
        await gatekeeper.redis.aclose()
        await redis.aclose()
        server.stop()
