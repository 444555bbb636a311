"""Following the connection events, so that a revoked connection leaves the worker's cache within a second.

The cache holds connections of every shard (a request names any connection), so each worker follows every
shard's `connection-events` stream, whatever shards it consumes, on one connection per server:

- on one Redis, one blocking XREAD names every shard's stream: an event is read as soon as it is written;
- on a Redis Cluster one XREAD cannot name streams of two slots (CROSSSLOT), and a blocking read per shard would
  hold a connection per shard on top of the consume loops' (at 64 shards, 64 of them). Instead the streams are
  polled every `POLL_S` with non-blocking XREADs, one pipeline per master (sent together): an event waits at most
  `POLL_S` more, for one connection and one round trip per master per poll.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from typing import TYPE_CHECKING, Any, cast

from redis.asyncio.cluster import RedisCluster

from services.redis_client import REDIS_ERRORS, Client
from services.streams import as_reply, pause

if TYPE_CHECKING:
    from services.gatekeeper.worker import Gatekeeper

log = logging.getLogger("fleetgate.gatekeeper")

POLL_S = 0.1
"""How often a cluster's event streams are polled: a revocation waits this long at most for its event to be read."""
RETRY_S = 0.5
"""The wait after a failed read, so that an outage is not logged ten times a second."""
COUNT = 1000

Positions = dict[str, bytes | str]
"""Each stream's last event id read."""


async def follow_connection_events(gatekeeper: Gatekeeper, block_ms: int = 200) -> None:
    """Drop cached connections as their events arrive, until the worker stops."""
    streams = [shard.connection_events for shard in gatekeeper.keys.all_shards]
    redis = gatekeeper.redis
    positions: Positions = {}
    while not gatekeeper.stopping.is_set():
        try:
            if not positions:  # until the first read: the streams' ends (the cache is empty; nothing older matters)
                positions = await _ends(redis, streams)
            if isinstance(redis, RedisCluster):
                failed = await _poll(gatekeeper, redis, positions)
                await pause(RETRY_S if failed else POLL_S, gatekeeper.stopping)
            else:
                read = await redis.xread(cast("dict[Any, Any]", positions), count=COUNT, block=block_ms)
                _forget(gatekeeper, positions, read)
        except REDIS_ERRORS as exc:
            log.warning("reading connection events failed: %s", exc)
            await pause(RETRY_S, gatekeeper.stopping)
        except Exception:  # this reader must outlive anything: without it, revocations wait for the cache TTL
            # redis-py's cluster client can fail with AttributeError on a connection closed by a topology refresh.
            log.exception("reading connection events failed")
            await pause(RETRY_S, gatekeeper.stopping)


async def _ends(redis: Client, streams: list[str]) -> Positions:
    """Each stream's last entry id ("0-0" if empty), in one pipeline (per master, on a cluster). Rather than `$`
    in XREAD: with `$` each read would miss what arrived between two reads."""
    async with redis.pipeline(transaction=False) as pipe:
        for stream in streams:
            pipe.xrevrange(stream, count=1)
        newest = await pipe.execute()
    return {stream: (found[0][0] if found else None) or "0-0" for stream, found in zip(streams, newest, strict=True)}


async def _poll(gatekeeper: Gatekeeper, redis: RedisCluster, positions: Positions) -> bool:
    """One non-blocking read of every stream, one pipeline per master; True if a master's read failed."""
    by_master: dict[str, list[str]] = defaultdict(list)
    for stream in positions:
        node = redis.get_node_from_key(stream)
        by_master[node.name if node else ""].append(stream)  # no node: the pipeline's error says why
    replies = await asyncio.gather(
        *(_read(redis, streams, positions) for streams in by_master.values()), return_exceptions=True
    )
    failed = False
    for reply in replies:
        if isinstance(reply, BaseException):
            failed = True
            if isinstance(reply, REDIS_ERRORS):
                log.warning("reading connection events failed: %s", reply)
            else:
                log.error("reading connection events failed", exc_info=reply)
            continue
        for response in reply:
            _forget(gatekeeper, positions, response)
    return failed


async def _read(redis: RedisCluster, streams: list[str], positions: Positions) -> list[Any]:
    async with redis.pipeline(transaction=False) as pipe:
        for stream in streams:
            pipe.xread({stream: positions[stream]}, count=COUNT)
        return await pipe.execute()


def _forget(gatekeeper: Gatekeeper, positions: Positions, response: Any) -> None:
    """Drop the connection of each event read from the cache; note how far each stream was read."""
    for stream, events in as_reply(response):
        for event_id, fields in events:
            positions[stream.decode()] = event_id
            try:
                gatekeeper.cache.forget_connection(json.loads(fields[b"data"])["connection_id"])
            except (KeyError, ValueError, TypeError):
                log.warning("ignoring malformed connection event %s", event_id.decode())
