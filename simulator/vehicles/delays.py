"""Decisions whose response a delay fault holds back: answered once their delay has passed, by one loop per service,
without holding up the rest of their batch.

A held decision stays pending in the group, unacknowledged, so nothing is lost if the process dies: another vehicles
service reclaims it and answers it (after its delay again). So that no reclaim takes it while it is held, `renew()`
claims the held entries again for their holder more often than `min_idle_ms` (XCLAIM JUSTID: the idle time restarts,
the delivery count does not grow). When it is due it is answered again from the vehicle's state and faults as they
are then, its delay served, and written by RESPOND like any other: a decision answered twice all the same (a hold that
lapsed under a stalled process, an entry published twice) still gets one response, by its dedupe record.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from services.gatekeeper.resp import Entry
from services.keyspace import ShardKeys
from services.redis_client import Client
from simulator.vehicles import metrics

log = logging.getLogger("fleetgate.vehicles")

Answer = Callable[[list[Entry], ShardKeys], Awaitable[Any]]
"""Answers (and writes) the due entries of one shard, their delay served."""


class Delays:
    """The held decisions of one vehicles service, by due time; `run()` answers each when due."""

    def __init__(self, redis: Client, group: str, consumer: str, answer: Answer) -> None:
        self.redis = redis
        self.group = group
        self.consumer = consumer
        self._answer = answer
        self._due: list[tuple[float, int, str, Entry]] = []
        self._held: set[tuple[str, bytes]] = set()
        self._shards: dict[str, ShardKeys] = {}
        self._order = itertools.count()
        self._changed = asyncio.Event()
        self._closed = False

    def __len__(self) -> int:
        return len(self._held)

    def holds(self, shard: ShardKeys, entry_id: bytes) -> bool:
        return (shard.decisions, entry_id) in self._held

    def hold(self, entry: Entry, shard: ShardKeys, delay_ms: int) -> None:
        """Answer `entry` no earlier than `delay_ms` from now (once: a held entry is not held again)."""
        key = (shard.decisions, entry[0])
        if key in self._held:
            return
        self._held.add(key)
        self._shards[shard.decisions] = shard
        heapq.heappush(self._due, (time.monotonic() + delay_ms / 1000, next(self._order), shard.decisions, entry))
        metrics.DELAYED.set(len(self._held))
        self._changed.set()

    async def run(self) -> None:
        """Answer held entries as they fall due, until close(); those still held then stay pending (reclaimed)."""
        while not self._closed:
            self._changed.clear()
            wait = None if not self._due else self._due[0][0] - time.monotonic()
            if wait is None or wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), wait)
                continue
            due: dict[str, list[Entry]] = {}
            now = time.monotonic()
            while self._due and self._due[0][0] <= now:
                _, _, stream, entry = heapq.heappop(self._due)
                due.setdefault(stream, []).append(entry)
            for stream, entries in due.items():
                try:
                    await self._answer(entries, self._shards[stream])
                except Exception:  # a bug: the entries stay pending, to be reclaimed, and the loop goes on
                    log.exception("%d delayed decisions of %s could not be answered", len(entries), stream)
                finally:
                    self._held.difference_update((stream, entry_id) for entry_id, _ in entries)
                    metrics.DELAYED.set(len(self._held))

    def close(self) -> None:
        self._closed = True
        self._changed.set()

    async def renew(self) -> None:
        """Restart the idle time of every held entry (run more often than min_idle_ms), so that none is reclaimed."""
        streams: dict[str, list[bytes]] = {}
        for stream, entry_id in list(self._held):
            streams.setdefault(stream, []).append(entry_id)
        for stream, ids in streams.items():
            await self.redis.xclaim(stream, self.group, self.consumer, 0, list[Any](ids), justid=True)
