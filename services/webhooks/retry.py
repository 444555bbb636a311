"""Delivering one held event to the end: attempts until a 2xx, retries with exponential backoff and full jitter
for a bounded time, then a dead-letter record; the delivery log written; the entry acknowledged (XACK) only after a
2xx, a dead letter or a skip, so that a worker that dies leaves it pending for the next holder of the shard.

Each attempt builds the payload again (payload.py): a retry an hour later is filtered by the permissions of that
moment, and a connection revoked meanwhile gets nothing. An event that makes two deliveries (its VEHICLE_STATE and
a VEHICLE_ERROR) retries only the one not yet delivered. The retry clock starts when the event was made, so an
event that waited behind a failing one has only what is left of its time: a dead endpoint's backlog drains into
dead letters instead of each event waiting the whole time in turn.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from schemas.webhooks import WebhookEvent, sign
from services.keyspace import ShardKeys
from services.redis_client import REDIS_ERRORS
from services.settings import Settings
from services.streams import Backoff, pause
from services.webhooks import metrics
from services.webhooks.log import LogEntry, Records, Status, now_ms
from services.webhooks.payload import Builder, NotNow, Outgoing, Plan, Skip
from services.webhooks.sender import Sender, Sent

log = logging.getLogger("fleetgate.webhooks")


def full_jitter(attempt: int, base_s: float, max_s: float) -> float:
    """The delay before retry number `attempt` (1 for the first): uniform in [0, min(max, base * 2^(attempt-1))]."""
    return random.uniform(0, min(max_s, base_s * 2 ** min(attempt - 1, 60)))


@dataclass(slots=True)
class Held:
    """An event a worker holds: where it came from (to acknowledge it) and what it is."""

    shard: ShardKeys
    entry_id: str
    event: WebhookEvent

    @property
    def queue(self) -> tuple[str, str]:
        """Events of one (webhook, vehicle) go out one at a time, in stream order."""
        return self.event.webhook_id, self.event.vehicle_id


@dataclass(slots=True)
class _Part:
    """One POST of an event, as it went so far."""

    attempts: int = 0
    status: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    done: bool = False


@dataclass(slots=True)
class _Progress:
    first_at: int = 0
    last_at: int = 0
    failures: int = 0
    last_error: str = ""
    parts: dict[str, _Part] = field(default_factory=dict)

    @property
    def attempts(self) -> int:
        return sum(p.attempts for p in self.parts.values()) or self.failures


Slot = Callable[[str], AbstractAsyncContextManager[object]]
"""webhook id -> a slot among the webhook's deliveries in flight (its concurrency limit)."""


class Deliverer:
    """Delivers held events, one call per event (see the module's text)."""

    def __init__(self, settings: Settings, builder: Builder, sender: Sender, records: Records, group: str) -> None:
        self.settings = settings
        self.builder = builder
        self.sender = sender
        self.records = records
        self.group = group
        self.redis = builder.redis

    async def deliver(self, held: Held, slot: Slot, stopping: asyncio.Event) -> bool:
        """Deliver until done (True: acknowledged) or `stopping` (False: left pending for whoever holds the shard
        next; an attempt in flight is finished first)."""
        progress = _Progress()
        settings = self.settings
        while not stopping.is_set():
            now = now_ms()
            progress.first_at = progress.first_at or now
            progress.last_at = now
            async with slot(held.event.webhook_id):
                outcome = await self._attempt(held, progress)
            if isinstance(outcome, Skip):
                await self._finish_skip(held, outcome)
                return True
            if outcome is None:
                await self._finish_delivered(held)
                return True
            progress.failures += 1
            progress.last_error = outcome
            metrics.FAILURES.inc()
            # Retried for a bounded time from when the event was made (or first tried, if that was earlier: a clock
            # ahead in the process that made it), so that events waiting behind a failing one do not each get
            # the whole time again once their turn comes: a dead endpoint's queue drains into dead letters.
            elapsed_s = (now_ms() - min(progress.first_at, held.event.created_at)) / 1000
            if elapsed_s >= settings.webhook_retry_for_s:
                await self._finish_dead(held, progress)
                return True
            metrics.RETRIES.inc()
            delay = full_jitter(progress.failures, settings.webhook_retry_base_s, settings.webhook_retry_max_s)
            await pause(min(delay, settings.webhook_retry_for_s - elapsed_s), stopping)
        return False

    async def _attempt(self, held: Held, progress: _Progress) -> Skip | str | None:
        """One try: None when every POST of the event has had its 2xx, a Skip, or the reason it failed."""
        try:
            plan = await self.builder.plan(held.event)
        except REDIS_ERRORS as exc:
            return f"Redis: {exc}"
        except Exception as exc:  # a bug or a bad record must not end the worker: retried, then dead-lettered
            log.exception("building webhook event %s failed", held.event.event_id)
            return f"building the payload failed: {type(exc).__name__}: {exc}"[:300]
        if isinstance(plan, Skip):
            return plan
        if isinstance(plan, NotNow):
            return plan.reason
        return await self._post_all(held, plan, progress)

    async def _post_all(self, held: Held, plan: Plan, progress: _Progress) -> str | None:
        for out in plan.outgoing:
            part = progress.parts.setdefault(out.event_id, _Part())
            if part.done:
                continue
            sent = await self._post(plan.key, out)
            part.attempts += 1
            part.status = sent.status
            part.latency_ms = round(sent.elapsed_s * 1000, 1)
            part.error = sent.error
            if not sent.ok:
                return sent.error or "failed"
            part.done = True
            try:
                await self.builder.remember(held.event.webhook_id, held.event.vehicle_id, out.remember)
                await self._log(held, out.event_id, out.event_type, Status.DELIVERED, part)
            except REDIS_ERRORS as exc:  # delivered all the same; the next change check may repeat it
                log.warning("recording delivery of %s failed: %s", out.event_id, exc)
        return None

    async def _post(self, key: str, out: Outgoing) -> Sent:
        body = json.dumps(out.make_body(str(uuid.uuid4()), now_ms()), separators=(",", ":")).encode()
        started = time.perf_counter()
        sent = await self.sender.post(out.url, body, {"SC-Signature": sign(key, body)})
        metrics.LATENCY.observe(time.perf_counter() - started)
        return sent

    async def _log(self, held: Held, event_id: str, event_type: str, status: Status, part: _Part) -> None:
        entry = LogEntry(
            event_id=event_id,
            vehicle_id=held.event.vehicle_id,
            event_type=event_type,
            reason=held.event.reason.value,
            status=status.value,
            attempts=part.attempts,
            http_status=part.status,
            latency_ms=part.latency_ms,
            error=part.error,
            at=now_ms(),
        )
        await self.records.log(held.event.webhook_id, entry)

    async def coalesce(self, held: Held) -> None:
        """Acknowledge an event that a waiting one of its queue covers (queues.py); no log line."""
        metrics.DELIVERIES.labels("coalesced").inc()
        await self._ack(held)

    async def _finish_delivered(self, held: Held) -> None:
        metrics.DELIVERIES.labels(Status.DELIVERED.value).inc()
        await self._ack(held)

    async def _finish_skip(self, held: Held, skip: Skip) -> None:
        metrics.DELIVERIES.labels(skip.status).inc()
        log.info("webhook event %s skipped: %s", held.event.event_id, skip.reason)
        if skip.logged:
            part = _Part(attempts=0, error=skip.reason)
            await self._bookkeep(
                lambda: self._log(held, held.event.event_id, held.event.event_type.value, Status.SKIPPED, part)
            )
        await self._ack(held)

    async def _finish_dead(self, held: Held, progress: _Progress) -> None:
        metrics.DELIVERIES.labels(Status.DEAD.value).inc()
        metrics.DEAD_LETTERS.inc()
        event = held.event
        log.warning(
            "webhook event %s for webhook %s dead-lettered after %d attempts: %s",
            event.event_id,
            event.webhook_id,
            progress.attempts,
            progress.last_error,
        )
        await self._bookkeep(
            lambda: self.records.dead_letter(
                reason=progress.last_error,
                shard=held.shard.index,
                entry_id=held.entry_id,
                event=event.model_dump(mode="json"),
                attempts=progress.attempts,
                first_attempt_at=progress.first_at,
                last_attempt_at=progress.last_at,
            )
        )
        parts = [(i, p) for i, p in progress.parts.items() if not p.done] or [(event.event_id, _Part())]
        for event_id, part in parts:
            part.error = part.error or progress.last_error
            part.attempts = part.attempts or progress.failures
            kind = event.event_type.value if event_id == event.event_id else "VEHICLE_ERROR"
            await self._bookkeep(functools.partial(self._log, held, event_id, kind, Status.DEAD, part))
        await self._ack(held)

    async def _ack(self, held: Held) -> None:
        await self._bookkeep(lambda: self.redis.xack(held.shard.webhook_events, self.group, held.entry_id))

    async def _bookkeep(self, write: Callable[[], Awaitable[object]]) -> None:
        """A write that must happen (an ack, a dead letter, a log line): tried again while Redis fails (the event
        stays pending meanwhile), never raised."""
        backoff = Backoff(first=0.1, cap=5.0)
        while True:
            try:
                await write()
                return
            except REDIS_ERRORS as exc:
                delay = backoff.next_delay()
                log.warning("webhook bookkeeping failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
