"""The vehicle API's way through the pipeline: a call is a request on the stream, its answer the decision (when
denied) or the vehicle's response (when allowed). No handler authorizes or reads vehicle state on its own.

Each API process runs one `Pipeline`: a reader per shard follows that shard's decisions and responses streams with
a plain XREAD (no consumer group: it holds nothing back from the streams' retention, and every process sees every
entry), from where they were when the process started. A call registers a future under its request id, XADDs the
request, and waits; the reader completes the future when the decision (denied) or the response (allowed) arrives.
A call that times out is forgotten, so the map holds only calls in flight. Request ids carry this process's
prefix, so a reader parses only entries that are its own (a substring test before any JSON).

How it scales: every API process reads every decision and response of the deployment, so reading costs grow
with processes x traffic; the substring test keeps the cost of someone else's entry to a few microseconds. A
handful of processes behind one load balancer is fine; past that, shard the API processes by shard
(`FLEETGATE_WORKER_SHARDS`-style) or give each process a reply stream of its own (a contract change).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from redis.asyncio.cluster import RedisCluster

from schemas.catalog import Kind
from schemas.decision import rfc3339
from services.gatekeeper.resp import RespTransport, transport_for
from services.keyspace import Keys, ShardKeys
from services.redis_client import REDIS_ERRORS, Client
from services.streams import Backoff, pause

log = logging.getLogger("fleetgate.http.pipeline")
READ_BLOCK_MS = 1000
READ_COUNT = 1000
ALLOWED = "ALLOWED"


@dataclass(frozen=True, slots=True)
class Call:
    """One request to send: who asks, for which vehicle, what."""

    connection_id: str
    vehicle_id: str
    kind: Kind
    target: str
    params: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """What came back: the decision, and for an ALLOWED one the vehicle's response; None for a call that got no
    answer in time (`timed_out`)."""

    request_id: str
    decision: dict[str, Any] | None
    response: dict[str, Any] | None = None

    @property
    def timed_out(self) -> bool:
        return self.decision is None or (self.decision.get("outcome") == ALLOWED and self.response is None)


@dataclass(slots=True)
class _Waiting:
    future: asyncio.Future[Reply]
    decision: dict[str, Any] | None = None


@dataclass(slots=True)
class Pipeline:
    """The process's calls in flight and the readers that complete them; started by the first call (or `start()`),
    `stop()` after."""

    redis: Client
    keys: Keys
    timeout_s: float
    prefix: str = field(default_factory=lambda: f"api-{secrets.token_hex(4)}-")
    _waiting: dict[str, _Waiting] = field(default_factory=dict)
    _counter: itertools.count[int] = field(default_factory=itertools.count)
    _readers: list[asyncio.Task[None]] = field(default_factory=list)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _marker: bytes = b""
    _outbox: list[tuple[ShardKeys, bytes, _Waiting]] = field(default_factory=list)
    _outbox_ready: asyncio.Event = field(default_factory=asyncio.Event)
    _transports: dict[int, RespTransport] = field(default_factory=dict)

    async def start(self) -> None:
        """Note where each shard's streams are, and follow them from there (the first call starts it too)."""
        if self._readers:
            return
        self._marker = f'"request_id":"{self.prefix}'.encode()
        # Hand-packed RESP on the pool's connections (as the gatekeeper's hot path): redis-py's retries, health
        # checks and reply dicts were a fifth of this process's CPU per call. One transport for every shard of a
        # standalone server (one write for the whole outbox); one per shard on a cluster.
        shared = None if isinstance(self.redis, RedisCluster) else RespTransport(self.redis)
        for shard in self.keys.all_shards:
            self._transports[shard.index] = shared or transport_for(self.redis, shard.requests)
            positions = [await _last_id(self.redis, shard.decisions), await _last_id(self.redis, shard.responses)]
            self._readers.append(asyncio.create_task(self._follow(shard, positions), name=f"replies {shard.index}"))
        self._readers.append(asyncio.create_task(self._write(), name="requests"))

    async def stop(self) -> None:
        self._stopping.set()
        self._outbox_ready.set()
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        for waiting in self._waiting.values():
            waiting.future.cancel()
        self._waiting.clear()

    @property
    def in_flight(self) -> int:
        return len(self._waiting)

    async def call(self, call: Call) -> Reply:
        """Send one request and wait for its answer (or `timeout_s`)."""
        (reply,) = await self.call_many([call])
        return reply

    async def call_many(self, calls: Sequence[Call]) -> list[Reply]:
        """Send requests and wait for all their answers, each within `timeout_s`. Writes are coalesced: one writer
        sends what every call in flight queued meanwhile in one pipeline, so a thousand calls hold one connection,
        not a thousand. A write that fails raises here (RedisError)."""
        await self.start()
        loop = asyncio.get_running_loop()
        issued_at = rfc3339(datetime.now(UTC).replace(microsecond=0))
        sent: list[tuple[str, _Waiting]] = []
        for call in calls:
            request_id = f"{self.prefix}{next(self._counter)}"
            waiting = _Waiting(loop.create_future())
            self._waiting[request_id] = waiting
            sent.append((request_id, waiting))
            shard = self.keys.shard_of_vehicle(call.vehicle_id)
            self._outbox.append((shard, _request(call, request_id, issued_at), waiting))
        self._outbox_ready.set()
        # One timer for the whole call, not a wait_for (a task and a timeout context) per request.
        timer = loop.call_later(self.timeout_s, _time_out, sent)
        try:
            for _, waiting in sent:
                await waiting.future
            return [waiting.future.result() for _, waiting in sent]
        finally:
            timer.cancel()
            for request_id, waiting in sent:
                self._waiting.pop(request_id, None)
                if waiting.future.done() and not waiting.future.cancelled():
                    waiting.future.exception()  # a failed write's: raised once above, not logged as unretrieved

    async def _write(self) -> None:
        """Send the queued requests, in one write per server, until stopped."""
        while not self._stopping.is_set():
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            batch, self._outbox = self._outbox, []
            by_server: dict[int, list[tuple[ShardKeys, bytes, _Waiting]]] = {}
            for queued in batch:
                by_server.setdefault(id(self._transports[queued[0].index]), []).append(queued)
            groups = list(by_server.values())
            if len(groups) == 1:
                await self._send(groups[0])
            else:  # a cluster's masters, at once
                await asyncio.gather(*(self._send(group) for group in groups))

    async def _send(self, queued: list[tuple[ShardKeys, bytes, _Waiting]]) -> None:
        transport = self._transports[queued[0][0].index]
        try:
            await transport.pipelined([("XADD", shard.requests, "*", "data", data) for shard, data, _ in queued])
        except REDIS_ERRORS as exc:
            for _, _, waiting in queued:
                if not waiting.future.done():
                    waiting.future.set_exception(exc)
            with contextlib.suppress(*REDIS_ERRORS):  # a cluster's slot map may have changed (a failover)
                await transport.refresh()

    async def _follow(self, shard: ShardKeys, positions: list[bytes | str]) -> None:
        """Read the shard's decisions and responses (in that order in `positions`) as they come."""
        backoff = Backoff()
        transport = self._transports[shard.index]
        streams = (shard.decisions, shard.responses)
        decisions = shard.decisions.encode()
        while not self._stopping.is_set():
            try:
                reply = await transport.call(
                    "XREAD", "COUNT", READ_COUNT, "BLOCK", READ_BLOCK_MS, "STREAMS", *streams, *positions
                )
            except REDIS_ERRORS as exc:
                delay = backoff.next_delay()
                log.warning("reading replies of shard %d failed (%s); retrying in %.1fs", shard.index, exc, delay)
                with contextlib.suppress(*REDIS_ERRORS):  # a cluster's slot map may have changed (a failover)
                    await transport.refresh()
                await pause(delay, self._stopping)
                continue
            backoff.reset()
            for stream, entries in cast("list[tuple[bytes, list[tuple[bytes, list[bytes]]]]]", reply or []):
                is_decision = stream == decisions
                positions[0 if is_decision else 1] = entries[-1][0]
                self._take(entries, is_decision=is_decision)

    def _take(self, entries: list[tuple[bytes, list[bytes]]], *, is_decision: bool) -> None:
        for _entry_id, fields in entries:
            data = fields[1] if len(fields) == 2 else b""  # the contract's one field, `data`
            if self._marker not in data:
                continue  # another process's (or the load generator's): not parsed at all
            with contextlib.suppress(ValueError):
                self._complete(json.loads(data), is_decision=is_decision)

    def _complete(self, message: dict[str, Any], *, is_decision: bool) -> None:
        request_id = message.get("request_id")
        waiting = self._waiting.get(request_id) if isinstance(request_id, str) else None
        if waiting is None or waiting.future.done():
            return
        assert isinstance(request_id, str)
        if not is_decision:
            waiting.future.set_result(Reply(request_id, waiting.decision, message))
        elif message.get("outcome") == ALLOWED:
            waiting.decision = message  # the vehicle's response completes it
        else:
            waiting.future.set_result(Reply(request_id, message))


def _time_out(sent: list[tuple[str, _Waiting]]) -> None:
    """Answer each request still waiting with what it has (a decision at most): it timed out."""
    for request_id, waiting in sent:
        if not waiting.future.done():
            waiting.future.set_result(Reply(request_id, waiting.decision))


async def _last_id(redis: Client, stream: str) -> bytes | str:
    """The id of the stream's newest entry, or 0-0 for an empty or missing one (read from there on)."""
    newest = await redis.xrevrange(stream, count=1)
    entry_id = newest[0][0] if newest else None
    return entry_id if entry_id is not None else "0-0"


def _request(call: Call, request_id: str, issued_at: str) -> bytes:
    body: dict[str, Any] = {
        "v": 1,
        "request_id": request_id,
        "connection_id": call.connection_id,
        "vehicle_id": call.vehicle_id,
        "kind": call.kind,
        "target": call.target,
        "issued_at": issued_at,
    }
    if call.params is not None:
        body["params"] = call.params
    return json.dumps(body, separators=(",", ":")).encode()
