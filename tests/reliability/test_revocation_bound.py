"""How long a revocation takes to bite, under load: from `revoke` returning to the first UNAUTHORIZED decision."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from devtools.crash_scenarios import revocations_under_load
from services.keyspace import Keys
from services.local_redis import RedisServer

pytestmark = [pytest.mark.reliability]

TRIALS = 40
BOUND_S = 1.0


@pytest.mark.timeout(120)
async def test_revocations_bite_within_a_second_at_p99_under_load(
    redis: Redis, keys: Keys, redis_server: RedisServer
) -> None:
    """40 revocations while about 2,000 other requests a second flow: p99 of the delay is under 1 s."""
    delays = await revocations_under_load(redis, keys, redis_server.url, TRIALS)
    assert len(delays) == TRIALS
    p50, p99 = delays[len(delays) // 2], delays[min(len(delays) - 1, int(0.99 * len(delays)))]
    assert p99 < BOUND_S, f"p50 {p50:.3f} s, p99 {p99:.3f} s"
