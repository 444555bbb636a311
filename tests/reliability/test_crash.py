"""Crashes: gatekeeper workers killed with SIGKILL at random moments while two share the group."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from devtools.crash_scenarios import crash_workers
from services.keyspace import Keys
from services.local_redis import RedisServer

pytestmark = [pytest.mark.reliability]


@pytest.mark.timeout(180)
async def test_five_kill_9s_lose_and_duplicate_nothing(redis: Redis, keys: Keys, redis_server: RedisServer) -> None:
    """50,000 requests, two workers, five seeded kill -9s each followed by a restart: each decided exactly once."""
    outcome = await crash_workers(redis, keys, redis_server.url, requests=50_000, kills=5, seed=20261129)
    assert outcome.disruptions == 5
    assert (outcome.lost, outcome.duplicated, outcome.pending, outcome.dead_letters) == (0, 0, 0, 0)
