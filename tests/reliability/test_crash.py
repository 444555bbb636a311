"""Crashes: gatekeeper workers killed with SIGKILL at random moments while two share the group."""

from __future__ import annotations

import asyncio
import random
import signal

import pytest
from redis.asyncio import Redis

from services.local_redis import RedisServer
from services.registry import Keys
from tests.reliability.workers import decided_ids, publish, start_worker, stop, wait_for_decisions

pytestmark = [pytest.mark.reliability, pytest.mark.redis]

REQUESTS = 50_000
KILLS = 5
# Reclaim quickly, so the test does not wait 30 s for each dead worker's entries.
TIMINGS = {"min_idle_ms": "1000", "reclaim_interval_ms": "250", "batch_size": "200"}


@pytest.mark.timeout(180)
async def test_five_kill_9s_lose_and_duplicate_nothing(redis: Redis, keys: Keys, redis_server: RedisServer) -> None:
    """50,000 requests, two workers, five seeded kill -9s each followed by a restart: each decided exactly once."""
    rng = random.Random(20261129)
    workers = [start_worker(redis_server.url, keys, **TIMINGS) for _ in range(2)]
    published, kills_done, orphaned = 0, 0, 0
    # Publish at a steady pace (about 5k/s) and kill one worker, chosen by the seed, at seeded moments.
    kill_at = sorted(rng.sample(range(5, REQUESTS // 1000 - 2), KILLS))
    try:
        for chunk in range(REQUESTS // 1000):
            await publish(redis, keys, published, 1000)
            published += 1000
            if kills_done < KILLS and chunk == kill_at[kills_done]:
                victim = rng.randrange(2)
                workers[victim].send_signal(signal.SIGKILL)
                await asyncio.to_thread(workers[victim].wait, 10)
                orphaned += (await redis.xpending(keys.requests, "gatekeeper"))["pending"]
                workers[victim] = start_worker(redis_server.url, keys, **TIMINGS)
                kills_done += 1
            await asyncio.sleep(0.2)
        assert kills_done == KILLS
        assert orphaned > 0  # the kills did leave entries read but not acknowledged
        assert await wait_for_decisions(redis, keys, REQUESTS, timeout=90) >= REQUESTS
        await asyncio.sleep(1.5)  # a late duplicate from a reclaim would show up now
    finally:
        exit_codes = await asyncio.to_thread(stop, workers)
    decided = await decided_ids(redis, keys)
    assert len(decided) == REQUESTS
    assert set(decided.values()) == {1}
    assert (await redis.xpending(keys.requests, "gatekeeper"))["pending"] == 0
    assert await redis.xlen(keys.deadletter) == 0
    assert exit_codes == [0, 0]  # the survivors stop cleanly on SIGTERM
