"""The webhook delivery worker (`fleetgate webhooks run`): takes each shard's events off `P:webhook-events` and
delivers them (docs/webhooks.md, "Guarantees").

    per shard: lease (lease.py) -> XREADGROUP its pending entries (id 0), then new ones (>) -> queues per
    (webhook, vehicle) (queues.py) -> deliver each to the end (retry.py: payload.py builds, sender.py POSTs)
    -> log, dead letter (log.py) -> XACK

One worker at a time holds a shard. Its consumer name in the group is the shard's (`shard-{i}`), the same for
every holder: the pending list is the shard's undelivered events, which a new holder reads first, in order, from
id 0, so what a dead holder had in hand is delivered again (with its `eventId`). Every worker tries every shard of
its settings (`FLEETGATE_WORKER_SHARDS`, default all), so with several workers the shards spread over them and a
worker that dies is replaced within `FLEETGATE_WEBHOOK_LEASE_S`. A holder that loses its lease stops at once (what
it had in flight stays pending for the next one); one that is stopped (SIGTERM) lets attempts in flight finish, then
releases the lease so that another worker takes over without waiting.

Now and then the holder trims its shard's stream of what the group has acknowledged (XTRIM MINID: below the oldest
pending entry, or past the last delivered one when none is pending): the stream is internal, nothing else reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import Any, cast

from pydantic import ValidationError

from schemas.webhooks import WebhookEvent
from services.http.pipeline import Pipeline
from services.keyspace import ShardKeys
from services.redis_client import REDIS_ERRORS, Client
from services.settings import Settings
from services.streams import Backoff, consumer_name, ensure_group, next_id, pause, split_id
from services.webhooks import metrics
from services.webhooks.lease import Lease
from services.webhooks.log import Records
from services.webhooks.manage import sender_for
from services.webhooks.payload import Builder
from services.webhooks.queues import Limits, Queues
from services.webhooks.retry import Deliverer, Held

log = logging.getLogger("fleetgate.webhooks")
READ_COUNT = 500
TRIM_EVERY_S = 5.0
LAG_EVERY_S = 1.0
SAFETY = 2 / 3
"""A holder that could not renew its lease for this share of its time stops, before the lease can pass on."""
STOP_GRACE_S = 5.0
"""How long a stopping worker waits for attempts in flight (at most the POST timeout)."""


class DeliveryWorker:
    """One delivery worker process's state: its leases, readers, queues, sender and pipeline."""

    def __init__(self, settings: Settings, redis: Client, *, holder: str | None = None) -> None:
        self.settings = settings
        self.redis = redis
        self.keys = settings.keys
        self.holder = holder or consumer_name()
        self.group = settings.webhook_group
        self.stopping = asyncio.Event()
        self.shards = [self.keys.shard(i) for i in settings.worker_shard_numbers]
        self.limits = Limits(settings.webhook_max_buffered, settings.webhook_concurrency)
        self.pipeline = Pipeline(redis, self.keys, settings.api_timeout_s, prefix=f"wh-{secrets.token_hex(4)}-")
        self.sender = sender_for(settings)
        self.records = Records(redis, self.keys, settings.webhook_log_maxlen)
        builder = Builder(redis, self.keys, self.pipeline)
        self.deliverer = Deliverer(settings, builder, self.sender, self.records, self.group)
        self.held: dict[int, ShardConsumer] = {}
        """The shards this worker holds now, by index."""

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        """Hold what shards it can and deliver their events until stopped."""
        lag = asyncio.create_task(self._report_lag())
        try:
            await asyncio.gather(*(self._hold(shard) for shard in self.shards))
        finally:
            self.stopping.set()
            await asyncio.gather(lag, return_exceptions=True)
            await self.pipeline.stop()
            await self.sender.close()

    async def _hold(self, shard: ShardKeys) -> None:
        """Take the shard's lease whenever it is free, and consume the shard while it is this worker's."""
        lease_s = self.settings.webhook_lease_s
        lease = Lease(self.redis, self.keys.webhooks_lease(shard.index), int(lease_s * 1000))
        while not self.stopping.is_set():
            try:
                got = await lease.hold()
            except REDIS_ERRORS as exc:
                log.warning("taking the lease of shard %d failed: %s", shard.index, exc)
                got = False
            if not got:
                await pause(lease_s / 3, self.stopping)
                continue
            log.info("webhook worker %s holds shard %d", self.holder, shard.index)
            consumer = ShardConsumer(self, shard)
            self.held[shard.index] = consumer
            task = asyncio.create_task(consumer.run(), name=f"webhooks shard {shard.index}")
            try:
                await self._renew_while(task, lease, shard.index)
                await asyncio.gather(task, return_exceptions=True)
            finally:
                self.held.pop(shard.index, None)
                with contextlib.suppress(*REDIS_ERRORS):
                    await lease.release()

    async def _renew_while(self, task: asyncio.Task[None], lease: Lease, shard: int) -> None:
        """Renew the lease while the shard's consumer runs; cancel it once the lease is lost, or could not be
        renewed for SAFETY of its time (it must stop before another worker may take the shard)."""
        lease_s = self.settings.webhook_lease_s
        renewed_at = time.monotonic()
        while not task.done():
            await asyncio.wait({task}, timeout=lease_s / 3)
            if task.done():
                return
            try:
                held = await lease.hold()
                renewed_at = time.monotonic()
            except REDIS_ERRORS as exc:
                log.warning("renewing the lease of shard %d failed: %s", shard, exc)
                held = time.monotonic() - renewed_at < lease_s * SAFETY
            if not held:
                log.warning("webhook worker %s lost the lease of shard %d", self.holder, shard)
                task.cancel()
                return

    async def _report_lag(self) -> None:
        while not self.stopping.is_set():
            oldest = [o for c in self.held.values() if (o := c.queues.oldest_ms()) is not None]
            metrics.LAG.set(max(0.0, time.time() - min(oldest) / 1000) if oldest else 0.0)
            await pause(LAG_EVERY_S, self.stopping)


class ShardConsumer:
    """Reads one held shard's events into its queues (see the module's text)."""

    def __init__(self, worker: DeliveryWorker, shard: ShardKeys) -> None:
        self.worker = worker
        self.shard = shard
        self.redis = worker.redis
        self.stream = shard.webhook_events
        self.name = f"shard-{shard.index}"
        self.stopping = worker.stopping
        self.queues = Queues(self._deliver, worker.limits, worker.deliverer.coalesce)

    async def _deliver(self, held: Held) -> bool:
        return await self.worker.deliverer.deliver(held, self.worker.limits.slot, self.stopping)

    async def run(self) -> None:
        trimming = asyncio.create_task(self._trim_now_and_then())
        try:
            await self._read_all()
        finally:
            trimming.cancel()
            await asyncio.gather(trimming, return_exceptions=True)
            await self.queues.finish(min(STOP_GRACE_S, self.worker.settings.webhook_timeout_s + 1))

    async def _read_all(self) -> None:
        settings = self.worker.settings
        backoff = Backoff()
        position = "0"  # the shard's pending entries first (what a dead holder had), in order; then new ones (>)
        group_ready = False
        while not self.stopping.is_set():
            await self._wait_for_room()
            if self.stopping.is_set():
                return
            pending = position != ">"
            try:
                if not group_ready:
                    await ensure_group(self.redis, self.stream, self.worker.group, "0")
                    group_ready = True
                reply = await self.redis.xreadgroup(
                    self.worker.group,
                    self.name,
                    {self.stream: position},
                    count=max(1, min(READ_COUNT, self.worker.limits.free)),
                    block=None if pending else settings.block_ms,
                )
                backoff.reset()
            except REDIS_ERRORS as exc:
                group_ready = "NOGROUP" not in str(exc)  # the stream was deleted: make the group again
                delay = backoff.next_delay()
                log.warning("reading %s failed (%s); retrying in %.1fs", self.stream, exc, delay)
                await pause(delay, self.stopping)
                continue
            entries = _entries(reply)
            if pending:
                position = entries[-1][0] if entries else ">"
            for entry_id, fields in entries:
                await self._take(entry_id, fields)

    async def _wait_for_room(self) -> None:
        room = asyncio.create_task(self.worker.limits.room())
        stop = asyncio.create_task(self.stopping.wait())
        await asyncio.wait({room, stop}, return_when=asyncio.FIRST_COMPLETED)
        for task in (room, stop):
            task.cancel()

    async def _take(self, entry_id: str, fields: dict[Any, Any] | None) -> None:
        """Queue an event, or dead-letter an entry that is not one (and acknowledge it)."""
        data = (fields or {}).get(b"data") or (fields or {}).get("data")
        raw = data.decode(errors="replace") if isinstance(data, bytes) else data
        try:
            if raw is None:
                raise ValueError("the entry has no `data` field (or was trimmed while pending)")
            event = WebhookEvent.model_validate_json(raw)
        except (ValueError, ValidationError) as exc:
            reason = f"not a webhook event: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"[:300]
            log.warning("webhook events entry %s of shard %d dead-lettered: %s", entry_id, self.shard.index, reason)
            metrics.DEAD_LETTERS.inc()
            with contextlib.suppress(*REDIS_ERRORS):
                await self.worker.records.dead_letter(
                    reason=reason, shard=self.shard.index, entry_id=entry_id, raw=raw if isinstance(raw, str) else None
                )
                await self.redis.xack(self.stream, self.worker.group, entry_id)
            return  # a failed write leaves it pending: the next holder tries again
        self.queues.add(Held(self.shard, entry_id, event))

    async def _trim_now_and_then(self) -> None:
        while not self.stopping.is_set():
            await pause(TRIM_EVERY_S, self.stopping)
            try:
                await trim_acknowledged(self.redis, self.stream, self.worker.group)
            except REDIS_ERRORS as exc:
                log.warning("trimming %s failed: %s", self.stream, exc)


async def trim_acknowledged(redis: Client, stream: str, group: str) -> int:
    """XTRIM MINID the stream of what `group` has acknowledged: below its oldest pending entry, or up to its last
    delivered one when none is pending. The entries trimmed."""
    groups = await redis.xinfo_groups(stream)
    ours = next((g for g in groups if _text(g["name"]) == group), None)
    if ours is None:
        return 0
    summary = await redis.xpending(stream, group)
    if int(summary["pending"]):
        low = _text(summary["min"])
    else:
        ms, seq = next_id(split_id(ours["last-delivered-id"]))
        low = f"{ms}-{seq}"
    return int(await redis.xtrim(stream, minid=low, approximate=False))


def _entries(reply: Any) -> list[tuple[str, dict[Any, Any] | None]]:
    found = []
    for _stream, entries in cast("list[tuple[Any, list[tuple[Any, Any]]]]", reply or []):
        for entry_id, fields in entries:
            found.append((_text(entry_id), fields))
    return found


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
