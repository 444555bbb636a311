"""The dedupe window: which request ids were decided lately, kept in a few sets per shard, one per time bucket.

A decided request id is a member of the set of the bucket it was decided in (`ShardKeys.decided(bucket)`). A
bucket is a quarter of the window long and expires a whole window after its end, so an id is remembered for at
least the window (and at most a quarter more). One key per request id, as before, cost Redis a key, an expiry and
a script call per request; a bucket's set takes a whole batch's ids in one SMISMEMBER per bucket and one SADD
(services/gatekeeper/scripts.py).

A worker names the buckets by its own clock. It checks one bucket more on each side of the window, so a clock that
is off by less than a bucket (6 h with the default 24 h window) still finds every id another worker recorded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from services.keyspace import ShardKeys
from services.redis_client import Client

BUCKETS_PER_WINDOW = 4


@dataclass(frozen=True, slots=True)
class DedupeWindow:
    """The buckets of a window of `window_s` seconds."""

    window_s: int

    @property
    def bucket_s(self) -> int:
        return max(1, math.ceil(self.window_s / BUCKETS_PER_WINDOW))

    def bucket(self, now: float) -> int:
        """The bucket an id decided at `now` (unix seconds) goes into."""
        return int(now // self.bucket_s)

    def checked(self, now: float) -> range:
        """The buckets that may hold an id decided within the window before `now`, newest first (the first is
        `bucket(now) + 1`, for a worker whose clock runs ahead; the second is `bucket(now)`)."""
        newest = self.bucket(now) + 1
        oldest = self.bucket(now - self.window_s) - 1
        return range(newest, oldest - 1, -1)

    def expires_at(self, bucket: int) -> int:
        """When a bucket may go (unix seconds): a window after the last moment an id can be written into it."""
        return (bucket + 1) * self.bucket_s + self.window_s


async def forget(redis: Client, shard: ShardKeys, *, matching: str | None = None, ids: Sequence[str] = ()) -> int:
    """Remove request ids from the shard's buckets: those matching the glob `matching` and the `ids` (for a load
    test's cleanup); returns how many were removed. Scans the shard's buckets, whatever clock wrote them."""
    removed = 0
    async for key in redis.scan_iter(match=shard.decided_prefix + "*", count=1000):
        doomed = list(ids)
        if matching is not None:
            doomed += [member async for member in redis.sscan_iter(key, match=matching, count=1000)]
        for start in range(0, len(doomed), 1000):
            removed += await redis.srem(key, *doomed[start : start + 1000])
    return removed
