"""A shard's lease: the one delivery worker that may consume a shard's webhook events (`P:webhooks:lease:{shard}`).

Only the holder reads the shard's events, so one vehicle's events go out in order even with many workers. The
lease is a key set with NX and an expiry, renewed by its holder; a holder that dies stops renewing it and another
worker takes the shard over once it expires. Renewing and releasing check the holder's token first (a script per
key: no other key is named, so it runs on a Redis Cluster), so a worker whose lease expired cannot extend or drop
its successor's.
"""

from __future__ import annotations

import time

from services.redis_client import REDIS_ERRORS, Client

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
SAFETY = 2 / 3
"""A holder that could not renew for this share of the lease's time stops as if it had lost it: it must stop
before the lease expires in Redis and a successor starts delivering the same vehicles."""


class ShardLease:
    """The lease on one shard, as held (or wanted) by `holder`."""

    def __init__(self, redis: Client, key: str, holder: str, lease_s: float) -> None:
        self.redis = redis
        self.key = key
        self.holder = holder
        self.lease_ms = max(1, int(lease_s * 1000))
        self._renewed_at = 0.0

    async def acquire(self) -> bool:
        """Take the lease if nobody holds it (or this holder already does)."""
        if await self.redis.set(self.key, self.holder, nx=True, px=self.lease_ms):
            self._renewed_at = time.monotonic()
            return True
        return await self.renew()

    async def renew(self) -> bool:
        """Extend the lease; False once it is someone else's, or when Redis did not answer for too long to be sure
        it is still ours."""
        try:
            renewed = bool(await self.redis.eval(_RENEW, 1, self.key, self.holder, self.lease_ms))
        except REDIS_ERRORS:
            return time.monotonic() - self._renewed_at < self.lease_ms / 1000 * SAFETY
        if renewed:
            self._renewed_at = time.monotonic()
        return renewed

    async def release(self) -> None:
        """Give the shard up at once (a clean stop), if it is still ours: the next worker need not wait."""
        await self.redis.eval(_RELEASE, 1, self.key, self.holder)
