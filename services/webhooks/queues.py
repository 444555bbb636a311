"""The order and the concurrency of deliveries in one worker.

Each (webhook, vehicle) has a queue: its events go out one at a time in stream order, each delivered to the end
(2xx, dead letter or skip) before the next starts, so an endpoint sees one vehicle's events in order. Queues run
concurrently, each in a task of its own: an endpoint that is down or slow holds back its own queues only. Attempts
to one webhook take a slot among `FLEETGATE_WEBHOOK_CONCURRENCY` (a retry's wait holds none). A worker holds at
most `FLEETGATE_WEBHOOK_MAX_BUFFERED` events (waiting, in flight or retrying); at that bound its readers wait for
room (`Limits.room`).

A queue whose endpoint is down must not grow with every change poll, or it would fill that buffer and hold back
every other webhook. A CHANGE_CHECK is not an event the receiver sees but a request to look: it is delivered only
if the state differs from what was last delivered, read when it is delivered. Two waiting CHANGE_CHECKs look at
the same state, so one that finds another waiting in its queue (not the one in flight) adds nothing and is
acknowledged at once (`coalesce`, counted as `coalesced`). Every other event is kept and delivered: with the
retry time counted from when an event was made (retry.py), a dead endpoint's backlog is bounded by what its
schedules and subscriptions make within `FLEETGATE_WEBHOOK_RETRY_FOR_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from schemas.webhooks import Reason
from services.webhooks.retry import Held

log = logging.getLogger("fleetgate.webhooks")

Deliver = Callable[[Held], Awaitable[bool]]
"""Deliver one event to the end (True) or leave it pending because the worker is stopping (False)."""
Coalesce = Callable[[Held], Coroutine[Any, Any, None]]
"""Acknowledge a CHANGE_CHECK that a waiting one of its queue already covers."""


class Limits:
    """What a worker's queues share across its shards: the buffer bound and each webhook's slots."""

    def __init__(self, max_buffered: int, per_webhook: int) -> None:
        self.max_buffered = max_buffered
        self.per_webhook = per_webhook
        self.buffered = 0
        self._room = asyncio.Event()
        self._room.set()
        self._slots: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}

    @property
    def free(self) -> int:
        return max(0, self.max_buffered - self.buffered)

    async def room(self) -> None:
        """Wait until the worker may hold another event."""
        await self._room.wait()

    def take(self, count: int = 1) -> None:
        self.buffered += count
        if self.buffered >= self.max_buffered:
            self._room.clear()

    def give_back(self, count: int = 1) -> None:
        self.buffered -= count
        if self.buffered < self.max_buffered:
            self._room.set()

    @contextlib.asynccontextmanager
    async def slot(self, webhook_id: str) -> AsyncIterator[object]:
        """One of the webhook's slots for the block (semaphores are dropped once no one uses them)."""
        semaphore, users = self._slots.setdefault(webhook_id, (asyncio.Semaphore(self.per_webhook), [0]))
        users[0] += 1
        try:
            async with semaphore:
                yield semaphore
        finally:
            users[0] -= 1
            if users[0] == 0:
                self._slots.pop(webhook_id, None)


class Queues:
    """One shard's queues in a worker."""

    def __init__(self, deliver: Deliver, limits: Limits, coalesce: Coalesce) -> None:
        self.deliver = deliver
        self.limits = limits
        self.coalesce = coalesce
        self._queues: dict[tuple[str, str], deque[Held]] = {}
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._coalescing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def add(self, held: Held) -> None:
        """Queue an event behind the others of its (webhook, vehicle), or acknowledge a CHANGE_CHECK that a waiting
        one covers (see the module's text); start the queue if it was idle."""
        key = held.queue
        queue = self._queues.get(key)
        check = Reason.CHANGE_CHECK
        if (
            queue
            and held.event.reason is check
            and any(w.event.reason is check for w in itertools.islice(queue, 1, None))
        ):
            task = asyncio.create_task(self.coalesce(held), name=f"coalesce {held.entry_id}")
            self._coalescing.add(task)
            task.add_done_callback(self._coalescing.discard)
            return
        self.limits.take()
        if queue is None:
            queue = self._queues[key] = deque()
            self._tasks[key] = asyncio.create_task(self._run(key, queue), name=f"webhook queue {key}")
        queue.append(held)

    def oldest_ms(self) -> int | None:
        """When the oldest event held was made (epoch ms), for the lag."""
        heads = [queue[0].event.created_at for queue in self._queues.values() if queue]
        return min(heads) if heads else None

    async def _run(self, key: tuple[str, str], queue: deque[Held]) -> None:
        try:
            while queue:
                if not await self.deliver(queue[0]):
                    return  # stopping: what is left stays pending in the stream
                queue.popleft()
                self.limits.give_back()
        except Exception:  # deliver() reports every failure itself; this is a bug, and must not end the worker
            log.exception("webhook queue %s failed; its events stay pending", key)
        finally:
            self.limits.give_back(len(queue))
            queue.clear()
            self._queues.pop(key, None)
            self._tasks.pop(key, None)

    async def finish(self, grace_s: float) -> None:
        """Let the deliveries in flight end (up to `grace_s`), then cancel what is left (it stays pending)."""
        tasks = [*self._tasks.values(), *self._coalescing]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
