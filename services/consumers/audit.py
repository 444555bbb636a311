"""The audit consumer: every decision and connection event, stored in SQLite (see audit_store.py).

It is one consumer group (`audit` by default) on both `{prefix}:decisions` and `{prefix}:connection-events` (on each
shard's pair of them), created at id 0 because an audit wants the history. It reads the shards in turn: one
XREADGROUP names one shard's two streams, which share its hash tag (one slot on a Redis Cluster). Per read batch:
parse, write in one SQLite transaction, commit, then XACK. A crash between the commit and the XACK leaves the batch
pending: a consumer re-reads its own pending entries on start (XREADGROUP from id 0; a consumer started with the
name of one that crashed, `consumer=`), and every consumer XAUTOCLAIMs the entries that dead audit consumers (names
are unique per process: services/streams.py) left idle for over a minute. Stored rows are keyed, so a re-read batch
adds nothing: no gap, no duplicate. An entry that is not a valid message is kept in the `unreadable` table and
acknowledged. A Redis outage is waited out with backoff, except by a batch run (`until_idle`), which reports it.
Entries trimmed before the audit read them (the decisions' hard cap, while the audit was stopped or too slow) are
a gap it cannot fill: it checks for one at start and every `gap_check_s`, logs it as an error and counts it in
`missed`, as it does entries deleted from a stream while pending; `fleetgate audit run --until-idle` then exits 1.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import KeyT, StreamIdT

from schemas.errors import describe_validation_error
from schemas.messages import ConnectionEventMessage, DecisionMessage
from services.consumers.audit_store import AuditStore, Batch
from services.keyspace import Keys, ShardKeys
from services.redis_client import Client
from services.streams import (
    Backoff,
    StreamReply,
    as_reply,
    claim_idle,
    consumer_name,
    ensure_group,
    forget_dead_consumers,
    pause,
    sweep_block_ms,
    take_gap,
)

log = logging.getLogger("fleetgate.audit")

DEFAULT_GROUP = "audit"
CLAIM_IDLE_MS = 60_000
"""A pending entry idle this long belongs to a dead audit consumer; a live one acknowledges within a batch."""


@dataclass
class AuditStats:
    read: int = 0
    """Entries read, including re-reads of entries already stored."""
    decisions: int = 0
    """Decision rows added."""
    events: int = 0
    """Connection event rows added."""
    unreadable: int = 0
    """Entries kept as unreadable (no `data`, not JSON, not a valid message)."""
    missed: int = 0
    """Entries trimmed from a stream before they were stored (a gap in the audit), and entries deleted while
    pending."""


class Auditor:
    """One audit consumer: run() until stop(); the store is the caller's to open and close."""

    def __init__(
        self,
        redis: Client,
        keys: Keys,
        store: AuditStore,
        *,
        group: str = DEFAULT_GROUP,
        consumer: str | None = None,
        batch_size: int = 500,
        block_ms: int = 1000,
        claim_idle_ms: int = CLAIM_IDLE_MS,
        claim_interval_s: float = 30.0,
        gap_check_s: float = 5.0,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.store = store
        self.group = group
        self.consumer = consumer or consumer_name()
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.claim_interval_s = claim_interval_s
        self.gap_check_s = gap_check_s
        self.shards = keys.all_shards
        self.streams = tuple(stream for shard in self.shards for stream in _streams_of(shard))
        self.decision_streams = frozenset(shard.decisions for shard in self.shards)
        self.stats = AuditStats()
        self.stopping = asyncio.Event()

    def stop(self) -> None:
        """Finish the batch in hand (stored and acknowledged), then return from run()."""
        self.stopping.set()

    async def run(self, *, until_idle: bool = False) -> AuditStats:
        """Store entries until stop(), or (until_idle) until a sweep of the shards that waited finds nothing new."""
        for stream in self.streams:
            await ensure_group(self.redis, stream, self.group, "0")
        await self.check_gaps()
        await self.read_own_pending()
        await self.claim_idle()
        loop = asyncio.get_running_loop()
        claimed_at, checked_at, backoff, found = loop.time(), loop.time(), Backoff(0.2), False
        while not self.stopping.is_set():
            try:
                if loop.time() - claimed_at >= self.claim_interval_s:
                    # Also reclaims this consumer's own batch left pending by a failed XACK below.
                    await self.claim_idle()
                    claimed_at = loop.time()
                if loop.time() - checked_at >= self.gap_check_s:
                    await self.check_gaps()
                    checked_at = loop.time()
                block_ms = sweep_block_ms(self.block_ms, len(self.shards), found=found)
                found = await self._read_new(block_ms)
                if not found and block_ms is not None and until_idle:
                    break
                backoff.reset()
            except (RedisConnectionError, RedisTimeoutError) as exc:
                if until_idle:  # a batch job reports the outage; a long-running consumer waits it out
                    raise
                delay = backoff.next_delay()
                log.warning("redis error, retrying in %.1fs: %s", delay, exc)
                await pause(delay, self.stopping)
        return self.stats

    async def check_gaps(self) -> int:
        """Count and report entries trimmed from the audited streams before this group read them."""
        missed = 0
        for stream in self.streams:
            gap = await take_gap(self.redis, stream, self.group)
            if gap:
                log.error(
                    "%d entries of %s were trimmed before audit group %s read them: the audit has a gap "
                    "(the stream's hard cap, FLEETGATE_DECISIONS_HARD_CAP, was reached while it was behind)",
                    gap,
                    stream,
                    self.group,
                )
                missed += gap
        self.stats.missed += missed
        return missed

    async def _read_new(self, block_ms: int | None) -> bool:
        """Read, store and acknowledge one batch of new entries per shard, in turn; False if none had any."""
        found = False
        for shard in self.shards:
            if self.stopping.is_set():
                break
            found = await self._read_new_of(shard, block_ms) or found
        return found

    async def _read_new_of(self, shard: ShardKeys, block_ms: int | None) -> bool:
        streams: dict[KeyT, StreamIdT] = dict.fromkeys(_streams_of(shard), ">")
        reply = as_reply(
            await self.redis.xreadgroup(self.group, self.consumer, streams, count=self.batch_size, block=block_ms)
        )
        if not any(entries for _, entries in reply):
            return False
        await self.handle(reply)
        return True

    async def read_own_pending(self) -> None:
        """Store again what this consumer read but did not acknowledge before (it crashed after the commit)."""
        for shard in self.shards:
            await self._read_own_pending_of(shard)

    async def _read_own_pending_of(self, shard: ShardKeys) -> None:
        cursors: dict[KeyT, StreamIdT] = dict.fromkeys(_streams_of(shard), "0")
        while cursors and not self.stopping.is_set():
            reply = as_reply(await self.redis.xreadgroup(self.group, self.consumer, cursors, count=self.batch_size))
            if not reply:
                break
            for stream, entries in reply:
                if entries:
                    cursors[stream.decode()] = entries[-1][0]
                else:  # this stream's pending list is read to its end
                    cursors.pop(stream.decode(), None)
            await self.handle(reply)

    async def claim_idle(self) -> None:
        """Take over entries idle past claim_idle_ms (their audit consumer died), store them, then delete the
        consumers left without entries."""
        for stream in self.streams:
            claims = claim_idle(
                self.redis, stream, self.group, self.consumer, self.claim_idle_ms, count=self.batch_size
            )
            async for claimed in claims:
                await self.handle([(stream.encode(), claimed)])
                if self.stopping.is_set():
                    return
            await forget_dead_consumers(self.redis, stream, self.group, self.claim_idle_ms, keep=self.consumer)

    async def handle(self, reply: StreamReply) -> None:
        """Store one read's entries in one transaction, then acknowledge them (never before the commit)."""
        batch = Batch()
        read: dict[str, list[bytes]] = {}
        deleted = 0
        for stream_name, entries in reply:
            stream = stream_name.decode()
            for entry_id, fields in entries:
                read.setdefault(stream, []).append(entry_id)
                if fields:
                    self._parse(stream, entry_id.decode(), fields, batch)
                else:  # deleted from the stream while pending: nothing left to store
                    deleted += 1
        if not read:
            return
        if deleted:
            log.error("%d entries were deleted from the stream while pending, before the audit stored them", deleted)
            self.stats.missed += deleted
        written = self.store.write(batch)  # sqlite3 blocks the loop for a commit; one consumer, so that is fine
        await self.ack(read)
        self.stats.read += sum(len(ids) for ids in read.values())
        self.stats.decisions += written.decisions
        self.stats.events += written.events
        self.stats.unreadable += written.unreadable

    async def ack(self, read: dict[str, list[bytes]]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream, ids in read.items():
                pipe.xack(stream, self.group, *ids)
            await pipe.execute()

    def _parse(self, stream: str, entry_id: str, fields: dict[bytes, bytes], batch: Batch) -> None:
        data = fields.get(b"data")
        try:
            if data is None:
                raise ValueError("no `data` field")
            if stream in self.decision_streams:
                batch.add_decision(entry_id, DecisionMessage.model_validate_json(data), data.decode())
            else:
                batch.add_event(stream, entry_id, ConnectionEventMessage.model_validate_json(data), data.decode())
        except ValueError as exc:  # pydantic's ValidationError and UnicodeDecodeError are ValueErrors
            reason = (
                describe_validation_error(exc).replace("\n", "; ") if isinstance(exc, ValidationError) else str(exc)
            )
            log.warning("%s entry %s is unreadable (%s); kept in the unreadable table", stream, entry_id, reason)
            batch.add_unreadable(stream, entry_id, reason, fields)


def _streams_of(shard: ShardKeys) -> tuple[str, str]:
    """What the audit reads of a shard: two streams under one hash tag, so one XREADGROUP may name both."""
    return shard.decisions, shard.connection_events


def summary(stats: AuditStats) -> dict[str, Any]:
    return {
        "read": stats.read,
        "decisions_added": stats.decisions,
        "events_added": stats.events,
        "unreadable_added": stats.unreadable,
        "missed": stats.missed,
    }
