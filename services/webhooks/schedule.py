"""The change poll and the schedules: what the process holding the triggers lease does at each step.

Due times live in Redis, in one zset (`P:webhooks:due`): the member `poll` is when the next change poll is due,
and each webhook with `triggers.schedule_s` has its id there with its next scheduled delivery. A process that takes
the lease over reads the same due times, so it neither repeats nor skips what its predecessor did; a step it
repeats (the predecessor died after emitting, before moving the due time on) makes the same event ids, since an
event's id is derived from its webhook, vehicle, reason and due time (audience.stable_event).

- The change poll (every `FLEETGATE_WEBHOOK_POLL_S`): reads every application's webhooks (two round trips when
  there are none) and makes one CHANGE_CHECK event per subscription of each verified webhook with change triggers
  (the delivery worker decides whether anything changed). It also brings the schedules up to date: a verified
  webhook with a schedule gets its member (due at once), one deleted, unverified or without a schedule loses it;
  so a new schedule starts at the next poll.
- A schedule due: one SCHEDULED event per subscription, and the member moves on by `schedule_s` (to `now +
  schedule_s` when it was more than a period late: a long pause is not made up for with a burst).

Each step emits before it moves a due time: a crash in between repeats the step, never skips it (at least once).
Subscriptions whose connection is revoked or gone get nothing (their revocation event was the last).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from schemas.webhooks import Reason, Webhook, WebhookEvent
from services.redis_client import Client
from services.registry.store import chunked
from services.webhooks.audience import Audience, stable_event
from services.webhooks.events import emit

POLL = "poll"
"""The member of the due zset that holds the change poll's next time (webhook ids are UUIDs: no clash)."""
CHUNK = 1000
"""Subscriptions whose events are made and emitted together."""


class Schedule:
    """One lease holder's view of the change poll and the schedules."""

    def __init__(self, audience: Audience, poll_s: float) -> None:
        self.audience = audience
        self.redis: Client = audience.redis
        self.key = audience.keys.webhooks_due
        self.poll_ms = max(1, round(poll_s * 1000))
        self.polls = 0
        """Change polls run by this process."""

    async def step(self, now_ms: int) -> int:
        """Run whatever is due at `now_ms`; the number of events emitted. One round trip when nothing is."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.key, {POLL: now_ms}, nx=True)  # the first step ever (or after the key was lost) polls
            pipe.zrange(self.key, 0, -1, withscores=True)
            _, members = await pipe.execute()
        planned = {_text(member): int(score) for member, score in members}
        emitted = 0
        poll_at = planned.pop(POLL, None)
        if poll_at is not None and poll_at <= now_ms:
            emitted += await self._poll(poll_at, now_ms, planned)
        due = {webhook_id: at for webhook_id, at in planned.items() if at <= now_ms}
        if due:
            emitted += await self._scheduled(due, now_ms)
        return emitted

    async def _poll(self, poll_at: int, now_ms: int, planned: dict[str, int]) -> int:
        webhooks = [w for w in await self.audience.of_apps() if w.verified]
        scheduled = {w.id: w for w in webhooks if w.triggers.schedule_s is not None}
        await self._plan(scheduled, planned, now_ms)
        watched = [w.id for w in webhooks if w.change_codes]
        emitted = await self._emit_for(watched, Reason.CHANGE_CHECK, {w: str(poll_at) for w in watched})
        await self.redis.zadd(self.key, {POLL: _next(poll_at, self.poll_ms, now_ms)})
        self.polls += 1
        return emitted

    async def _plan(self, scheduled: dict[str, Webhook], planned: dict[str, int], now_ms: int) -> None:
        """Add the schedules that are new (due now, and so in `planned`), drop the ones that ended."""
        new = {webhook_id: now_ms for webhook_id in scheduled if webhook_id not in planned}
        ended = [webhook_id for webhook_id in planned if webhook_id not in scheduled]
        if new:
            await self.redis.zadd(self.key, new, nx=True)
            planned.update(new)
        if ended:
            await self.redis.zrem(self.key, *ended)
            for webhook_id in ended:
                planned.pop(webhook_id)

    async def _scheduled(self, due: dict[str, int], now_ms: int) -> int:
        webhooks = {
            i: w for i, w in (await self.audience.webhooks(due)).items() if w.verified and w.triggers.schedule_s
        }
        ended = [webhook_id for webhook_id in due if webhook_id not in webhooks]
        if ended:  # deleted, unverified or unscheduled since the last poll
            await self.redis.zrem(self.key, *ended)
        emitted = await self._emit_for(webhooks, Reason.SCHEDULED, {i: str(due[i]) for i in webhooks})
        if webhooks:
            moved = {i: _next(due[i], (w.triggers.schedule_s or 1) * 1000, now_ms) for i, w in webhooks.items()}
            await self.redis.zadd(self.key, moved)
        return emitted

    async def _emit_for(self, webhook_ids: Iterable[str], reason: Reason, due: dict[str, str]) -> int:
        """One `reason` event per subscription of these webhooks whose connection is active; how many."""
        subscriptions = await self.audience.subscriptions_of_webhooks(webhook_ids)
        emitted = 0
        for chunk in chunked(subscriptions, CHUNK):
            users = await self.audience.active_users(s.connection_id for s in chunk)
            events: Sequence[WebhookEvent] = [
                stable_event(s, users[s.connection_id], reason, [due[s.webhook_id]])
                for s in chunk
                if s.connection_id in users
            ]
            await emit(self.redis, self.audience.keys, events)
            emitted += len(events)
        return emitted


def _next(due_ms: int, period_ms: int, now_ms: int) -> int:
    """The next due time after one at `due_ms`: a period later, or a period from now if that is already past."""
    following = due_ms + period_ms
    return following if following > now_ms else now_ms + period_ms


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
