"""The loops the gatekeeper is measured against, each draining `total` entries of a consumer group.

- ceiling: the least a Python process can do: hiredis parsing, hand-packed RESP, XREADGROUP COUNT 500, one XADD
  per entry passing the payload through, one XACK per batch, no decision.
- redis-py loop: what a competent user writes: XREADGROUP COUNT 500, pydantic decode, the same decide() and
  encoder, one pipeline per batch with an XADD per decision and one XACK.
- FastStream default: a per-message `@broker.subscriber(stream=StreamSub(..., group, consumer))` handler that
  decides and publishes with `broker.publish` per message (into FastStream's own `__data__` envelope).
- FastStream batch: a `StreamSub(..., batch=True, max_records=500)` handler that gets the batch's entries, decides
  each, queues an XADD per decision on FastStream's `Pipeline` dependency and executes it once; FastStream then
  acknowledges the batch with one XACK.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from faststream.redis import RedisBroker, StreamSub
from faststream.redis.annotations import Pipeline, RedisStreamMessage
from pydantic import ValidationError
from redis.asyncio import Redis

from bench.raw import RawRedis, pack
from schemas.connection import Connection
from schemas.decision import decide, rfc3339
from schemas.messages import decode_request
from schemas.outbound import encode_decision
from schemas.vehicle import Vehicle

BATCH = 500
Lookups = tuple[dict[str, Connection], dict[str, Vehicle]]


@dataclass(frozen=True)
class Drain:
    """Read `total` entries of `stream` as `group`, writing results to `out`."""

    stream: str
    group: str
    out: str
    total: int


async def ceiling(host: str, port: int, drain: Drain) -> None:
    redis = await RawRedis.open(host, port)
    stream_b, group_b, out_b = drain.stream.encode(), drain.group.encode(), drain.out.encode()
    total = drain.total
    read = pack(b"XREADGROUP", b"GROUP", group_b, b"ceiling", b"COUNT", b"%d" % BATCH, b"STREAMS", stream_b, b">")
    done = 0
    while done < total:
        (reply,) = await redis.call([read])
        if not reply:
            continue
        entries = reply[0][1]
        commands = [pack(b"XADD", out_b, b"*", b"data", fields[1]) for _, fields in entries]
        commands.append(pack(b"XACK", stream_b, group_b, *[entry_id for entry_id, _ in entries]))
        await redis.call(commands)
        done += len(entries)
    await redis.close()


async def redis_py_loop(redis: Redis, drain: Drain, lookups: Lookups) -> None:
    connections, vehicles = lookups
    stream, group, out, total = drain.stream, drain.group, drain.out, drain.total
    done = 0
    while done < total:
        response = await redis.xreadgroup(group, "redis-py", {stream: ">"}, count=BATCH, block=100)
        for _, entries in cast("list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]", response or []):
            decided_at = rfc3339(datetime.now(UTC))
            async with redis.pipeline(transaction=False) as pipe:
                for entry_id, fields in entries:
                    try:
                        request = decode_request(fields[b"data"])
                    except ValidationError:
                        continue  # the comparison is about the I/O pattern; the few bad entries are skipped
                    decision = decide(request, connections.get(request.connection_id), vehicles.get(request.vehicle_id))
                    pipe.xadd(out, {"data": encode_decision(decision, request, entry_id.decode(), decided_at)})
                pipe.xack(stream, group, *[entry_id for entry_id, _ in entries])
                await pipe.execute()
            done += len(entries)


def quiet_broker(url: str) -> RedisBroker:
    """A FastStream broker that logs warnings only (its per-message info lines would dominate the timing)."""
    quiet = logging.getLogger("bench.faststream")
    quiet.setLevel(logging.WARNING)
    return RedisBroker(url, logger=quiet)


async def faststream_default(url: str, drain: Drain, lookups: Lookups) -> None:
    connections, vehicles = lookups
    stream, group, out, total = drain.stream, drain.group, drain.out, drain.total
    broker = quiet_broker(url)
    finished = asyncio.Event()
    handled = 0

    @broker.subscriber(stream=StreamSub(stream, group=group, consumer="faststream"))
    async def handle(_message: dict[Any, Any], raw: RedisStreamMessage) -> None:
        nonlocal handled
        handled += 1
        if handled >= total:
            finished.set()
        try:
            # `_message` is the entry's `data` field already parsed from JSON, but a request validates from JSON
            # text only (`issued_at` is strict), so decode the raw text like the other loops do.
            request = decode_request(raw.body)
        except ValidationError:
            return
        decision = decide(request, connections.get(request.connection_id), vehicles.get(request.vehicle_id))
        payload = encode_decision(decision, request, str(handled), rfc3339(datetime.now(UTC)))
        await broker.publish(payload, stream=out)

    async with broker:
        await broker.start()
        await finished.wait()


async def faststream_batch(url: str, drain: Drain, lookups: Lookups) -> None:
    """FastStream's batch stream subscriber; the group must already exist at `0` (the caller creates it).

    FastStream creates a missing group at `$`, which would skip the pre-filled entries; with the group there, its
    own XGROUP CREATE gets BUSYGROUP, which it tolerates.
    """
    connections, vehicles = lookups
    stream, group, out, total = drain.stream, drain.group, drain.out, drain.total
    broker = quiet_broker(url)
    finished = asyncio.Event()
    handled = 0

    # max_records is the XREADGROUP COUNT: without it a read takes the whole backlog as one batch.
    sub = StreamSub(stream, group=group, consumer="faststream-batch", batch=True, max_records=BATCH)

    @broker.subscriber(stream=sub)
    async def handle(messages: list[dict[Any, Any]], pipe: Pipeline) -> None:
        nonlocal handled
        decided_at = rfc3339(datetime.now(UTC))
        for message in messages:
            handled += 1
            try:
                # Unlike the per-message subscriber, the batch one hands over each entry's fields unparsed:
                # `{"data": "<request JSON>"}` (it unwraps only its own `__data__` field).
                request = decode_request(message["data"])
            except ValidationError:
                continue
            decision = decide(request, connections.get(request.connection_id), vehicles.get(request.vehicle_id))
            # The batch's decisions go out in one pipeline, FastStream's `Pipeline` dependency, as plain XADDs of
            # the contract's `data` field: `broker.publish(..., pipeline=pipe)` would queue the same XADDs but of
            # FastStream's `__data__` envelope, and measured 25-40 % slower here.
            pipe.xadd(out, {"data": encode_decision(decision, request, str(handled), decided_at)})
        await pipe.execute()
        if handled >= total:
            finished.set()

    async with broker:
        await broker.start()
        await finished.wait()
