"""The webhook triggers: the service that makes webhook events (it never POSTs; the delivery worker does).

Two jobs, in one process or many:

- **Stream triggers** (stream_triggers.py): a consumer group (`FLEETGATE_WEBHOOK_GROUP`, created at 0) on every
  shard's `connection-events` and `responses` streams, one XREADGROUP per shard naming both (they share the
  shard's hash tag). A revocation makes its VEHICLE_ERROR events and ends the subscriptions; a command's success
  makes CHANGE_CHECK events. Each batch: events emitted, subscriptions removed, then XACK. A consumer reads its own
  pending entries first (after a start or an error) and claims those that dead consumers left idle for
  `FLEETGATE_MIN_IDLE_MS`; a repeat makes the same event ids. Every process runs this part: the group shares the
  entries out.
- **Poll and schedules** (schedule.py): only the holder of a lease (`P:webhooks:triggers-lease`, lease.py, for
  `FLEETGATE_WEBHOOK_LEASE_S`, renewed at each step) runs them; another process takes the lease when the holder
  stops (it lets the lease go) or dies (the lease expires).

Nothing an entry holds crashes the service: an unreadable entry is logged and acknowledged; an entry whose
handling raises (a bug) is retried alone, then logged and acknowledged; a Redis outage is waited out with backoff,
the batch in hand left pending and read again. `run` returns within about `FLEETGATE_BLOCK_MS` of `stopping`.

The group on `responses` holds that stream's retention while the triggers do not run (services/retention.py):
a deployment that stops running them for good deletes the group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from redis.typing import KeyT, StreamIdT

from services.keyspace import ShardKeys
from services.redis_client import REDIS_ERRORS, Client
from services.settings import Settings
from services.streams import (
    Backoff,
    as_reply,
    claim_idle,
    consumer_name,
    ensure_group,
    every,
    forget_dead_consumers,
    pause,
)
from services.webhooks.audience import Audience
from services.webhooks.lease import Lease
from services.webhooks.schedule import Schedule
from services.webhooks.store import WebhookStore
from services.webhooks.stream_triggers import StreamEntry, StreamTriggers

log = logging.getLogger("fleetgate.webhooks.triggers")

MAX_STEP_S = 1.0
"""The longest pause between two steps of the lease holder: schedules are in whole seconds."""


@dataclass
class TriggerStats:
    read: int = 0
    """Stream entries read (re-reads and claims included)."""
    stream_events: int = 0
    """Events made by revocations and command changes."""
    scheduled_events: int = 0
    """Events made by the change poll and the schedules."""
    unreadable: int = 0
    """Entries that were not readable messages: logged, acknowledged."""
    failed: int = 0
    """Entries whose handling raised: logged, acknowledged without their events."""
    leading: bool = False
    """Whether this process held the lease at its last step."""


class TriggerService:
    """Makes the webhook events of revocations, command changes, the change poll and the schedules."""

    def __init__(self, settings: Settings, redis: Client, *, consumer: str | None = None) -> None:
        self.settings = settings
        self.redis = redis
        self.keys = settings.keys
        self.group = settings.webhook_group
        self.consumer = consumer or consumer_name()
        self.audience = Audience(redis, self.keys)
        self.stream_triggers = StreamTriggers(self.audience, WebhookStore(redis, self.keys))
        self.schedule = Schedule(self.audience, settings.webhook_poll_s)
        self.lease = Lease(redis, self.keys.webhooks_triggers_lease, round(settings.webhook_lease_s * 1000))
        self.stats = TriggerStats()

    async def run(self, stopping: asyncio.Event) -> None:
        """Make events until `stopping` is set."""
        reclaim_s = self.settings.reclaim_interval_ms / 1000
        await self._ensure_groups(stopping)
        await asyncio.gather(
            *(self._consume(shard, stopping) for shard in self.keys.all_shards),
            every(reclaim_s, self.reclaim, stopping, "webhook triggers reclaim"),
            self._lead(stopping),
        )

    # --- the stream triggers

    async def _ensure_groups(self, stopping: asyncio.Event) -> None:
        """Create the group on every shard's streams (at 0), waiting out a Redis that does not answer yet."""
        backoff = Backoff(0.2)
        while not stopping.is_set():
            try:
                for shard in self.keys.all_shards:
                    for stream in _streams_of(shard):
                        await ensure_group(self.redis, stream, self.group, "0")
                return
            except REDIS_ERRORS as exc:
                delay = backoff.next_delay()
                log.warning("cannot create group %s yet, retrying in %.1fs: %s", self.group, delay, exc)
                await pause(delay, stopping)

    async def _consume(self, shard: ShardKeys, stopping: asyncio.Event) -> None:
        backoff = Backoff(0.2)
        ready, cursor = True, "0"  # "0": this consumer's own pending entries first, then ">": new ones
        while not stopping.is_set():
            try:
                if not ready:
                    for stream in _streams_of(shard):
                        await ensure_group(self.redis, stream, self.group, "0")
                    ready = True
                streams: dict[KeyT, StreamIdT] = dict.fromkeys(_streams_of(shard), cursor)
                block = None if cursor == "0" else self.settings.block_ms
                reply = as_reply(
                    await self.redis.xreadgroup(
                        self.group, self.consumer, streams, count=self.settings.batch_size, block=block
                    )
                )
                entries = [StreamEntry(s.decode(), i.decode(), f) for s, found in reply for i, f in found]
                if entries:
                    await self.handle(shard, entries)
                elif cursor == "0":
                    cursor = ">"
                backoff.reset()
            except REDIS_ERRORS as exc:
                delay = backoff.next_delay()
                log.warning("redis error on shard %d's streams, retrying in %.1fs: %s", shard.index, delay, exc)
                ready, cursor = False, "0"  # the group may be gone with its stream; what was read is pending
                await pause(delay, stopping)
            except Exception:  # a bug must not end the stream triggers for good, silently
                log.exception("the stream triggers of shard %d failed; retrying", shard.index)
                cursor = "0"
                await pause(backoff.next_delay(), stopping)

    async def handle(self, shard: ShardKeys, entries: Sequence[StreamEntry]) -> None:
        """Make one batch's events, then acknowledge it. A batch whose handling raises (not Redis: a bug) is
        handled again one entry at a time, so that only the entry that causes it is given up."""
        self.stats.read += len(entries)
        try:
            emitted, unreadable = await self.stream_triggers.handle(shard, entries)
        except REDIS_ERRORS:
            raise
        except Exception:
            if len(entries) > 1:
                self.stats.read -= len(entries)
                for entry in entries:
                    await self.handle(shard, [entry])
                return
            log.exception("%s entry %s made the triggers fail; acknowledged", entries[0].stream, entries[0].entry_id)
            self.stats.failed += 1
            emitted = unreadable = 0
        await self._ack(entries)
        self.stats.stream_events += emitted
        self.stats.unreadable += unreadable

    async def _ack(self, entries: Sequence[StreamEntry]) -> None:
        by_stream: dict[str, list[str]] = {}
        for entry in entries:
            by_stream.setdefault(entry.stream, []).append(entry.entry_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream, ids in by_stream.items():
                pipe.xack(stream, self.group, *ids)
            await pipe.execute()

    async def reclaim(self) -> None:
        """Handle the entries dead consumers left idle, then forget those consumers."""
        idle_ms, count = self.settings.min_idle_ms, self.settings.batch_size
        for shard in self.keys.all_shards:
            for stream in _streams_of(shard):
                claims = claim_idle(self.redis, stream, self.group, self.consumer, idle_ms, count=count)
                async for claimed in claims:
                    await self.handle(shard, [StreamEntry(stream, i.decode(), f) for i, f in claimed])
                await forget_dead_consumers(self.redis, stream, self.group, idle_ms, keep=self.consumer)

    # --- the poll and the schedules, by the lease holder

    async def _lead(self, stopping: asyncio.Event) -> None:
        step_s = min(MAX_STEP_S, self.settings.webhook_poll_s, self.settings.webhook_lease_s / 3)
        try:
            while not stopping.is_set():
                try:
                    self.stats.leading = await self.lease.hold()
                    if self.stats.leading:
                        self.stats.scheduled_events += await self.schedule.step(int(time.time() * 1000))
                except REDIS_ERRORS as exc:
                    log.warning("webhook poll and schedules: redis error, retrying: %s", exc)
                except Exception:  # a bug in one step must not end the schedules for good, silently
                    log.exception("webhook poll and schedules failed; retrying")
                await pause(step_s, stopping)
        finally:
            self.stats.leading = False
            with contextlib.suppress(*REDIS_ERRORS):
                await self.lease.release()


def _streams_of(shard: ShardKeys) -> tuple[str, str]:
    """What the triggers read of a shard: two streams under one hash tag, so one XREADGROUP may name both."""
    return shard.connection_events, shard.responses
