"""The login and token endpoints' rate limiter on a real redis-server."""

from __future__ import annotations

from redis.asyncio import Redis

from services.http.ratelimit import RateLimiter
from services.keyspace import Keys


async def test_calls_past_the_limit_are_refused_per_client_and_ip(redis: Redis, keys: Keys) -> None:
    """The limit counts one client from one IP: a third call is refused with a retry-after; another IP, another
    client or another endpoint has its own count."""
    limiter = RateLimiter(redis, keys, limit=2, window_s=60)
    verdicts = [await limiter.hit("login", "app", "10.0.0.1") for _ in range(3)]
    assert [v.allowed for v in verdicts] == [True, True, False]
    assert 1 <= verdicts[2].retry_after_s <= 60
    assert (await limiter.hit("login", "app", "10.0.0.2")).allowed
    assert (await limiter.hit("login", "other-app", "10.0.0.1")).allowed
    assert (await limiter.hit("token", "app", "10.0.0.1")).allowed


async def test_a_window_expires(redis: Redis, keys: Keys) -> None:
    """The count lives one window: its key expires, so nothing accumulates in Redis."""
    limiter = RateLimiter(redis, keys, limit=1, window_s=1)
    await limiter.hit("login", "app", "10.0.0.1")
    (key,) = await redis.keys(f"{keys.prefix}:ratelimit:*")
    assert 0 < await redis.ttl(key) <= 2
