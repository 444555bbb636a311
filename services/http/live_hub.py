"""The live decisions feed of one `fleetgate serve` process: one reader of every shard's decisions stream, shared by
every browser watching the dashboard's Live decisions page.

The hub starts with its first subscriber and stops when the last one leaves (or the server shuts down). It reads
with a plain XREAD (no consumer group: it holds nothing back from the streams' retention), from where each stream
was when it started, a few thousand entries a call, hiredis-parsed (services/gatekeeper/resp.py). Each entry is
decoded to the few fields the feed shows (live_window.py) and handed to the windows of that app's subscribers:
a dict lookup and a few comparisons per decision, no allocation per subscriber. Once per tick (a second) each
subscriber gets ONE message, its window's counts per outcome and its newest decisions, into a small queue; a
subscriber whose queue is full (a slow browser) is skipped for that tick, its window counting on, and the reader
never waits for anyone. `python -m bench.live_feed` measures the reader's CPU per decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import msgspec
from redis.asyncio.cluster import RedisCluster

from services.gatekeeper.resp import RespTransport, transport_for
from services.http.live_window import LiveFilter, Window, decode_decision
from services.keyspace import Keys, ShardKeys
from services.redis_client import REDIS_ERRORS, Client
from services.streams import Backoff, last_id, pause

log = logging.getLogger("fleetgate.http.live")
READ_COUNT = 4000
READ_BLOCK_MS = 1000
READ_PAUSE_S = 0.1
"""After a read that caught up, the wait before the next: one read of ~1,000 entries costs far less than ten
of ~100 (each read's own cost is most of the reader's CPU at 10,000 decisions/s), and nobody sees 0.1 s here."""
TICK_S = 1.0
QUEUE_SIZE = 2
"""Messages a subscriber may have waiting; past that its ticks are skipped (live_window.Window.skip)."""
_Entries = list[tuple[bytes, list[bytes]]]


@dataclass(eq=False, slots=True)
class Subscriber:
    """One browser's subscription: its app, its window, and the messages waiting for it (None: the end)."""

    app_id: str
    window: Window
    queue: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))

    async def next(self, timeout_s: float) -> bytes | None:
        """The next message; b"" when none came within `timeout_s` (time for a heartbeat); None once closed."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout_s)
        except TimeoutError:
            return b""

    def close(self) -> None:
        """End the subscription: what was waiting is dropped, the end is next."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


@dataclass(eq=False)
class LiveHub:
    """The process's feed: `subscribe()`, `unsubscribe()`, and `stop()` when the server shuts down (final)."""

    redis: Client
    keys: Keys
    tick_s: float = TICK_S
    read_count: int = READ_COUNT
    decisions_read: int = 0
    """Every decision entry read since the process started (benchmarks compare it with what was written)."""
    _by_app: dict[str, list[Subscriber]] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _closed: bool = False

    @property
    def subscribers(self) -> int:
        return sum(len(s) for s in self._by_app.values())

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    async def subscribe(self, app_id: str, live_filter: LiveFilter) -> Subscriber:
        """A new subscriber of the app's decisions from now on (the hub starts, reading from each stream's end,
        before this returns: whatever is written after it is counted)."""
        subscriber = Subscriber(app_id, Window(live_filter, time.monotonic()))
        async with self._lock:
            if self._closed:
                subscriber.close()
                return subscriber
            if not self._tasks:
                await self._start()
            self._by_app[app_id] = [*self._by_app.get(app_id, []), subscriber]  # a new list: the reader's is whole
        return subscriber

    async def unsubscribe(self, subscriber: Subscriber) -> None:
        async with self._lock:
            left = [s for s in self._by_app.get(subscriber.app_id, []) if s is not subscriber]
            if left:
                self._by_app[subscriber.app_id] = left
            else:
                self._by_app.pop(subscriber.app_id, None)
            if not self._by_app:
                await self._halt()

    async def stop(self) -> None:
        """Close every subscription and stop reading, for good (the server is shutting down)."""
        async with self._lock:
            self._closed = True
            for subscribers in self._by_app.values():
                for subscriber in subscribers:
                    subscriber.close()
            self._by_app.clear()
            await self._halt()

    async def _start(self) -> None:
        groups: list[tuple[RespTransport, list[ShardKeys]]]
        if isinstance(self.redis, RedisCluster):  # each shard's stream on its own master
            groups = [(transport_for(self.redis, s.decisions), [s]) for s in self.keys.all_shards]
        else:  # one server: one XREAD of every shard's stream
            groups = [(RespTransport(self.redis), list(self.keys.all_shards))]
        for transport, shards in groups:
            positions = [await last_id(self.redis, s.decisions) for s in shards]
            self._tasks.append(asyncio.create_task(self._follow(transport, shards, positions), name="live feed"))
        self._tasks.append(asyncio.create_task(self._tick_every_second(), name="live feed ticks"))

    async def _halt(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _follow(
        self, transport: RespTransport, shards: Sequence[ShardKeys], positions: list[bytes | str]
    ) -> None:
        streams = [s.decisions for s in shards]
        index = {stream.encode(): i for i, stream in enumerate(streams)}
        backoff, never = Backoff(), asyncio.Event()
        while True:
            try:
                reply = await transport.call(
                    "XREAD", "COUNT", self.read_count, "BLOCK", READ_BLOCK_MS, "STREAMS", *streams, *positions
                )
            except REDIS_ERRORS as exc:
                delay = backoff.next_delay()
                log.warning("the live feed's read failed (%s); retrying in %.1fs", exc, delay)
                with contextlib.suppress(*REDIS_ERRORS):  # a cluster's slot map may have changed (a failover)
                    await transport.refresh()
                await pause(delay, never)
                continue
            backoff.reset()
            read = 0
            for stream, entries in cast("list[tuple[bytes, _Entries]]", reply or []):
                positions[index[stream]] = entries[-1][0]
                self.take(entries)
                read += len(entries)
            if 0 < read < self.read_count:  # caught up: let the next read gather a batch (a tick is a second)
                await asyncio.sleep(READ_PAUSE_S)

    def take(self, entries: _Entries) -> None:
        """Count each decision in the windows of its app's subscribers (the hot path: see the module's text)."""
        by_app = self._by_app
        decode = decode_decision
        for _entry_id, fields in entries:
            data = fields[1] if fields[0] == b"data" else _data_field(fields)
            try:
                decision = decode(data)
            except msgspec.DecodeError:  # not a decision of the contract: nothing to show
                continue
            subscribers = by_app.get(decision.app_id or "")  # no app (an unknown connection): nobody's
            if subscribers is not None:
                for subscriber in subscribers:
                    subscriber.window.add(decision)
        self.decisions_read += len(entries)

    async def _tick_every_second(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due += self.tick_s
            await asyncio.sleep(max(0.0, due - loop.time()))
            self.tick(time.monotonic())

    def tick(self, now: float) -> None:
        """One message per subscriber that has room for it; a skipped tick for any other."""
        for subscribers in self._by_app.values():
            for subscriber in subscribers:
                if subscriber.queue.full():
                    subscriber.window.skip()
                elif (message := subscriber.window.flush(now)) is not None:
                    subscriber.queue.put_nowait(message)


def _data_field(fields: list[bytes]) -> bytes:
    """The `data` field of an entry that has others too (the contract allows them); b"" without one."""
    for name, value in zip(fields[::2], fields[1::2], strict=False):
        if name == b"data":
            return value
    return b""
