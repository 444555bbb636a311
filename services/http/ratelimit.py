"""Rate limits of the login and token endpoints: a fixed window per endpoint, client and IP, counted in Redis.

A window is one INCR (and one EXPIRE when it opens), shared by every `fleetgate serve` process on the prefix. A
fixed window lets a burst of twice the limit straddle a window's edge; enough to stop password and code guessing
on a local stack, not meant as a quota.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from services.keyspace import Keys
from services.redis_client import Client


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after_s: int
    """Seconds until the window ends (0 when allowed)."""


class RateLimiter:
    def __init__(self, redis: Client, keys: Keys, *, limit: int, window_s: int = 60) -> None:
        self.redis = redis
        self.keys = keys
        self.limit = limit
        self.window_s = window_s

    async def hit(self, endpoint: str, client_id: str, ip: str) -> Verdict:
        """Count one call of `endpoint` by this client from this IP; refused past `limit` in the window."""
        now = time.time()
        window = int(now // self.window_s)
        key = self.keys.rate_limit(endpoint, f"{client_id}|{ip}", window)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, self.window_s + 1, nx=True)
            count, _ = await pipe.execute()
        if int(count) <= self.limit:
            return Verdict(True, 0)
        return Verdict(False, max(1, int((window + 1) * self.window_s - now + 0.999)))
