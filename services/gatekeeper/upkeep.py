"""What each worker does beside deciding (serve() in worker.py runs these): follow connection events, trim, report
group stats."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING

from services.gatekeeper import metrics
from services.keyspace import ShardKeys
from services.redis_client import REDIS_ERRORS, Client
from services.streams import as_reply, last_id, next_id, split_id

if TYPE_CHECKING:
    from services.gatekeeper.worker import Gatekeeper, Shard

log = logging.getLogger("fleetgate.gatekeeper")


async def follow_connection_events(gatekeeper: Gatekeeper, block_ms: int = 200) -> None:
    """Drop cached connections as their events arrive, so a revocation applies within about `block_ms`.

    The cache holds connections of every shard, so every shard's event stream is followed, each by its own
    reader (on a cluster the streams live on different servers: one XREAD cannot span them).
    """
    streams = [shard.connection_events for shard in gatekeeper.keys.all_shards]
    await asyncio.gather(*(_follow(gatekeeper, stream, block_ms) for stream in streams))


async def _follow(gatekeeper: Gatekeeper, stream: str, block_ms: int) -> None:
    redis = gatekeeper.redis
    last: bytes | str = "$"  # until the first read: the stream's end (the cache is empty now; nothing older matters)
    while not gatekeeper.stopping.is_set():
        try:
            if last == "$":
                last = await last_id(redis, stream)
            response = await redis.xread({stream: last}, count=1000, block=block_ms)
        except REDIS_ERRORS as exc:
            log.warning("reading connection events failed: %s", exc)
            await asyncio.sleep(0.5)
            continue
        except Exception:  # this reader must outlive anything: without it, revocations wait for the cache TTL
            # redis-py's cluster client can fail with AttributeError on a connection closed by a topology refresh.
            log.exception("reading connection events failed")
            await asyncio.sleep(0.5)
            continue
        for _stream, events in as_reply(response):
            for event_id, fields in events:
                last = event_id
                try:
                    gatekeeper.cache.forget_connection(json.loads(fields[b"data"])["connection_id"])
                except (KeyError, ValueError, TypeError):
                    log.warning("ignoring malformed connection event %s", event_id.decode())


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
    for shard in gatekeeper.shards:
        now_ms = await _server_ms(shard)
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
