"""The loops the gatekeeper is measured against, each draining `total` entries of a consumer group.

- ceiling: the least a Python process can do: hiredis parsing, hand-packed RESP, XREADGROUP COUNT 500, one XADD
  per entry passing the payload through, one XACK per batch, no decision.
- redis-py loop: what a competent user writes: XREADGROUP COUNT 500, pydantic decode, the same decide() and
  encoder, one pipeline per batch with an XADD per decision and one XACK.
- FastStream default: a per-message `@broker.subscriber(stream=StreamSub(..., group, consumer))` handler that
  decides and publishes with `broker.publish` per message.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import hiredis
from faststream.redis import RedisBroker, StreamSub
from pydantic import ValidationError
from redis.asyncio import Redis

from schemas.connection import Connection
from schemas.decision import decide, rfc3339
from schemas.messages import RequestMessage, decode_request
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


def _pack(*args: bytes) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


async def ceiling(host: str, port: int, drain: Drain) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    parser = hiredis.Reader()
    stream_b, group_b, out_b = drain.stream.encode(), drain.group.encode(), drain.out.encode()
    total = drain.total

    async def call(commands: list[bytes]) -> list[Any]:
        writer.write(b"".join(commands))
        replies: list[Any] = []
        while len(replies) < len(commands):
            reply = parser.gets()
            if reply is False:
                parser.feed(await reader.read(1 << 20))
                continue
            replies.append(reply)
        return replies

    read = _pack(b"XREADGROUP", b"GROUP", group_b, b"ceiling", b"COUNT", b"%d" % BATCH, b"STREAMS", stream_b, b">")
    done = 0
    while done < total:
        (reply,) = await call([read])
        if not reply:
            continue
        entries = reply[0][1]
        commands = [_pack(b"XADD", out_b, b"*", b"data", fields[1]) for _, fields in entries]
        commands.append(_pack(b"XACK", stream_b, group_b, *[entry_id for entry_id, _ in entries]))
        await call(commands)
        done += len(entries)
    writer.close()
    await writer.wait_closed()


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
                    pipe.xadd(out, {"data": decision.encode(request, entry_id.decode(), decided_at)})
                pipe.xack(stream, group, *[entry_id for entry_id, _ in entries])
                await pipe.execute()
            done += len(entries)


async def faststream_default(url: str, drain: Drain, lookups: Lookups) -> None:
    connections, vehicles = lookups
    stream, group, out, total = drain.stream, drain.group, drain.out, drain.total
    quiet = logging.getLogger("bench.faststream")
    quiet.setLevel(logging.WARNING)
    broker = RedisBroker(url, logger=quiet)
    finished = asyncio.Event()
    handled = 0

    @broker.subscriber(stream=StreamSub(stream, group=group, consumer="faststream"))
    async def handle(message: dict[Any, Any]) -> None:
        nonlocal handled
        handled += 1
        if handled >= total:
            finished.set()
        try:
            # FastStream hands over the entry's `data` field already parsed from JSON.
            request = RequestMessage.model_validate(message)
        except ValidationError:
            return
        decision = decide(request, connections.get(request.connection_id), vehicles.get(request.vehicle_id))
        payload = decision.encode(request, str(handled), rfc3339(datetime.now(UTC)))
        await broker.publish(payload, stream=out)

    async with broker:
        await broker.start()
        await finished.wait()
