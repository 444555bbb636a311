"""What each worker does beside deciding (serve() in worker.py runs these): trim, report group stats. Following
the connection events is events.py's."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from services.gatekeeper import metrics
from services.redis_client import Client
from services.streams import next_id, split_id

if TYPE_CHECKING:
    from services.gatekeeper.worker import Gatekeeper

log = logging.getLogger("fleetgate.gatekeeper")


async def trim_requests(gatekeeper: Gatekeeper) -> int:
    """Trim each consumed shard's requests below what every group has acknowledged; report pending and lag per
    group (summed over this worker's shards)."""
    trimmed = 0
    pending: dict[str, int] = {}
    lag: dict[str, int] = {}
    for shard in gatekeeper.shards:
        trimmed += await _trim_stream(gatekeeper.redis, shard.keys.requests, pending, lag)
    for name, count in pending.items():
        metrics.PENDING.labels(name).set(count)
        metrics.LAG.labels(name).set(lag[name])
    return trimmed


async def _trim_stream(redis: Client, stream: str, pending: dict[str, int], lag: dict[str, int]) -> int:
    groups = await redis.xinfo_groups(stream)
    if not groups:
        return 0
    floors = []
    for group in groups:
        name = group["name"].decode() if isinstance(group["name"], bytes) else str(group["name"])
        pending[name] = pending.get(name, 0) + int(group["pending"])
        lag[name] = lag.get(name, 0) + int(group.get("lag") or 0)
        # XINFO and XPENDING are two reads: entries pending in the first may be acknowledged by the second.
        summary = await redis.xpending(stream, name) if group["pending"] else None
        if summary and summary["min"] is not None:
            floors.append(split_id(summary["min"]))
        else:
            floors.append(next_id(split_id(group["last-delivered-id"])))
    # XTRIM MINID keeps ids >= the floor: everything older is acknowledged by every group.
    ms, seq = min(floors)
    return int(await redis.xtrim(stream, minid=f"{ms}-{seq}", approximate=False))


async def trim_by_age(gatekeeper: Gatekeeper) -> int:
    """Drop decisions and dead letters older than their `*_max_age_s` (MINID: stream ids start with the time)."""
    settings = gatekeeper.settings
    if not settings.decisions_max_age_s and not settings.deadletter_max_age_s:
        return 0
    removed = 0
    for shard in gatekeeper.shards:
        # The clock that stamped the ids (the shard's server), not this host's.
        seconds, micros = await shard.transport.call("TIME")
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        for stream, max_age_s in (
            (shard.keys.decisions, settings.decisions_max_age_s),
            (shard.keys.deadletter, settings.deadletter_max_age_s),
        ):
            if max_age_s:
                removed += int(
                    await gatekeeper.redis.xtrim(stream, minid=f"{now_ms - 1000 * max_age_s}-0", approximate=False)
                )
    return removed
