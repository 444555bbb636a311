"""What each worker does beside deciding (serve() in worker.py runs these): trim, report group stats. Following
the connection events is events.py's."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from services.gatekeeper import metrics
from services.keyspace import ShardKeys
from services.redis_client import Client
from services.streams import next_id, split_id

if TYPE_CHECKING:
    from services.gatekeeper.worker import Gatekeeper, Shard

log = logging.getLogger("fleetgate.gatekeeper")


async def trim_requests(gatekeeper: Gatekeeper) -> int:
    """Trim each consumed shard's requests below what every group has acknowledged; export pending and lag per
    group (summed over this worker's shards)."""
    trimmed = 0
    pending: dict[str, int] = {}
    lag: dict[str, int] = {}
    for shard in gatekeeper.shards:
        trimmed += await _trim_stream(gatekeeper.redis, shard.keys.requests, pending, lag)
        await _forget_settled_failures(gatekeeper.redis, shard.keys, gatekeeper.settings.group)
    _export("requests", pending, lag)
    return trimmed


async def trim_outputs(gatekeeper: Gatekeeper) -> int:
    """Apply the decisions' retention on each consumed shard (services/retention.py: never below what a group has
    not acknowledged, except past the hard cap); count and log what the cap took unread; export the groups'
    pending and lag. Dead letters (no consumer groups of ours) are trimmed on XADD and by age."""
    settings = gatekeeper.settings
    removed = 0
    pending: dict[str, int] = {}
    lag: dict[str, int] = {}
    by_age = bool(settings.decisions_max_age_s or settings.deadletter_max_age_s)
    for shard in gatekeeper.shards:
        now_ms = await _server_ms(shard) if by_age else 0  # a TIME per shard only when an age limit needs it
        retained = await gatekeeper.decisions_retention.apply(shard.keys.decisions, now_ms)
        removed += retained.trimmed
        for group, state in retained.groups.items():
            pending[group] = pending.get(group, 0) + state.pending
            lag[group] = lag.get(group, 0) + (state.lag or 0)
        for group, unread in retained.unread_trimmed.items():
            metrics.TRIMMED_UNREAD.labels("decisions", group).inc(unread)
            log.error(
                "%s held %d entries (FLEETGATE_DECISIONS_HARD_CAP): %d decisions trimmed before group %s read "
                "them; it is too slow or stopped (delete a group no longer used: XGROUP DESTROY)",
                shard.keys.decisions,
                settings.decisions_hard_cap,
                unread,
                group,
            )
        if settings.deadletter_max_age_s:
            oldest = f"{now_ms - 1000 * settings.deadletter_max_age_s}-0"
            removed += int(await gatekeeper.redis.xtrim(shard.keys.deadletter, minid=oldest, approximate=False))
    _export("decisions", pending, lag)
    return removed


async def _server_ms(shard: Shard) -> int:
    """The clock that stamps the shard's entry ids (its server's), not this host's."""
    seconds, micros = await shard.transport.call("TIME")
    return int(seconds) * 1000 + int(micros) // 1000


def _export(stream: str, pending: dict[str, int], lag: dict[str, int]) -> None:
    for group, count in pending.items():
        metrics.PENDING.labels(stream, group).set(count)
        metrics.LAG.labels(stream, group).set(lag[group])


async def _forget_settled_failures(redis: Client, keys: ShardKeys, group: str) -> None:
    """Drop recorded failures of entries no longer pending in the group (decided on a later attempt): older than
    its oldest pending entry. One HLEN when there are none, the usual case."""
    if not await redis.hlen(keys.failures):
        return
    summary = await redis.xpending(keys.requests, group)
    oldest = split_id(summary["min"]) if summary and summary["min"] is not None else None
    recorded = await redis.hkeys(keys.failures)
    settled = [entry_id for entry_id in recorded if oldest is None or split_id(entry_id) < oldest]
    if settled:
        await redis.hdel(keys.failures, *settled)


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
