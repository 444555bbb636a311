"""What each worker does beside deciding: follow connection events, reclaim, trim, beat, report group stats."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from services.gatekeeper import metrics
from services.gatekeeper.worker import Gatekeeper
from services.redis_client import REDIS_ERRORS, Client

log = logging.getLogger("fleetgate.gatekeeper")


async def every(seconds: float, job: Callable[[], Awaitable[Any]], stopping: asyncio.Event) -> None:
    """Run `job` every `seconds` until stopping; a failing run is logged and the next one tried."""
    while not stopping.is_set():
        try:
            await job()
        except REDIS_ERRORS as exc:
            log.warning("%s failed: %s", getattr(job, "__name__", "job"), exc)
        except Exception:  # a bug in one run must not end the job for good, silently
            log.exception("%s failed", getattr(job, "__name__", "job"))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=seconds)


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
                newest = await redis.xrevrange(stream, count=1)
                last = (newest[0][0] if newest else None) or "0-0"
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
        for _stream, events in cast("list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]", response or []):
            for event_id, fields in events:
                last = event_id
                try:
                    gatekeeper.cache.forget_connection(json.loads(fields[b"data"])["connection_id"])
                except (KeyError, ValueError, TypeError):
                    log.warning("ignoring malformed connection event %s", event_id.decode())


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
            floors.append(_stream_id(summary["min"]))
        else:
            floors.append(_next_id(_stream_id(group["last-delivered-id"])))
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
        seconds, micros = await shard.wire.call("TIME")
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


async def beat(gatekeeper: Gatekeeper) -> None:
    key = gatekeeper.keys.heartbeat(gatekeeper.consumer)
    await gatekeeper.redis.set(key, str(time.time()), ex=gatekeeper.settings.heartbeat_ttl_s)


def _stream_id(value: bytes | str) -> tuple[int, int]:
    text = value.decode() if isinstance(value, bytes) else value
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _next_id(entry_id: tuple[int, int]) -> tuple[int, int]:
    return entry_id[0], entry_id[1] + 1


async def _until_redis_answers(gatekeeper: Gatekeeper) -> None:
    """Create the group and beat once, retrying with backoff while Redis is away (it may start after us)."""
    delay = 0.1
    while not gatekeeper.stopping.is_set():
        try:
            await gatekeeper.ensure_group()
            await beat(gatekeeper)
            return
        except REDIS_ERRORS as exc:
            log.warning("waiting for Redis (%s); retrying in %.1fs", exc, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(gatekeeper.stopping.wait(), timeout=delay)
            delay = min(delay * 2, 5.0)


async def serve(gatekeeper: Gatekeeper) -> None:
    """Run a worker until gatekeeper.stop(): the consume loop and its upkeep, then a clean exit."""
    settings, stopping = gatekeeper.settings, gatekeeper.stopping
    await _until_redis_answers(gatekeeper)
    if stopping.is_set():
        return
    upkeep = [
        asyncio.create_task(follow_connection_events(gatekeeper)),
        asyncio.create_task(every(settings.reclaim_interval_ms / 1000, gatekeeper.reclaim, stopping)),
        asyncio.create_task(every(settings.trim_interval_ms / 1000, lambda: trim_requests(gatekeeper), stopping)),
        asyncio.create_task(every(settings.trim_interval_ms / 1000, lambda: trim_by_age(gatekeeper), stopping)),
        asyncio.create_task(every(settings.heartbeat_ttl_s / 3, lambda: beat(gatekeeper), stopping)),
    ]
    streams = ", ".join(shard.keys.requests for shard in gatekeeper.shards)
    log.info("gatekeeper %s consuming %s as group %s", gatekeeper.consumer, streams, settings.group)
    try:
        await gatekeeper.consume()
    finally:
        stopping.set()
        await asyncio.gather(*upkeep, return_exceptions=True)
        await gatekeeper.redis.delete(gatekeeper.keys.heartbeat(gatekeeper.consumer))
        log.info("gatekeeper %s stopped", gatekeeper.consumer)
