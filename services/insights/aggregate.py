"""Reading the usage aggregate: an app's hourly buckets over a window, and how far behind the usage group is."""

from __future__ import annotations

from redis.exceptions import ResponseError

from services.insights.counts import UsageTotals
from services.insights.window import Window
from services.registry.store import Registry


async def read_usage(registry: Registry, app_id: str, window: Window) -> UsageTotals:
    """The sum of the app's buckets of every shard over the window's hours: one pipeline of HGETALLs per shard."""
    buckets = []
    for shard in registry.keys.all_shards:
        async with registry.redis.pipeline(transaction=False) as pipe:
            for hour in window.hours:
                pipe.hgetall(shard.usage(app_id, hour))
            buckets += await pipe.execute()
    return UsageTotals.of_buckets(buckets)


async def usage_lag(registry: Registry, group: str) -> tuple[bool, int]:
    """Whether the usage group exists (on any shard's decisions), and how many decisions it has not counted yet:
    not read (its lag) or read and not acknowledged (pending)."""
    exists, behind = False, 0
    for shard in registry.keys.all_shards:
        try:
            groups = await registry.redis.xinfo_groups(shard.decisions)
        except ResponseError:  # no decisions stream on this shard yet
            continue
        for found in groups:
            name = found["name"]
            if (name.decode() if isinstance(name, bytes) else name) == group:
                exists = True
                behind += int(found.get("lag") or 0) + int(found["pending"])
    return exists, behind
