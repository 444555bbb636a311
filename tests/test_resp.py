"""The hot path's raw commands (services/gatekeeper/resp.py) on a real redis-server."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from services.gatekeeper.resp import PackedTail, RespScript, RespTransport
from services.keyspace import Keys


async def test_read_group_returns_entries_with_their_fields(redis: Redis, keys: Keys) -> None:
    await redis.xgroup_create(keys.requests, "g", id="0", mkstream=True)
    first = await redis.xadd(keys.requests, {"data": b"one"})
    second = await redis.xadd(keys.requests, {"data": b"two", "trace": b"t-1"})
    transport = RespTransport(redis)
    entries = await transport.read_group(keys.requests, "g", "c1", count=10, block_ms=10)
    assert entries == [(first, {b"data": b"one"}), (second, {b"data": b"two", b"trace": b"t-1"})]
    # Nothing new: it waits, then answers empty.
    assert await transport.read_group(keys.requests, "g", "c1", count=10, block_ms=10) == []
    assert (await redis.xpending(keys.requests, "g"))["pending"] == 2


async def test_read_groups_reads_several_streams_in_one_command(redis: Redis, keys: Keys) -> None:
    """One XREADGROUP of three streams: COUNT applies to each, and only the streams with new entries come back."""
    streams = [f"{keys.prefix}:s{n}" for n in range(3)]
    for stream in streams:
        await redis.xgroup_create(stream, "g", id="0", mkstream=True)
    first = [await redis.xadd(streams[0], {"data": f"{n}".encode()}) for n in range(3)]
    third = await redis.xadd(streams[2], {"data": b"x"})
    transport = RespTransport(redis)
    read = await transport.read_groups(streams, "g", "c1", count=2, block_ms=10)
    assert read == [
        (streams[0].encode(), [(first[0], {b"data": b"0"}), (first[1], {b"data": b"1"})]),
        (streams[2].encode(), [(third, {b"data": b"x"})]),
    ]
    assert await transport.read_groups(streams, "g", "c1", count=2, block_ms=10) == [
        (streams[0].encode(), [(first[2], {b"data": b"2"})])
    ]
    assert await transport.read_groups(streams, "g", "c1", count=2, block_ms=10) == []


async def test_script_is_loaded_again_after_a_script_flush(redis: Redis, keys: Keys) -> None:
    script = RespScript(RespTransport(redis), "return redis.call('INCR', KEYS[1]) + tonumber(ARGV[1])")
    assert await script([keys.prefix + ":n"], [10]) == 11
    await redis.script_flush()
    assert await script([keys.prefix + ":n"], [10]) == 12


async def test_a_packed_tail_reaches_the_script_byte_exact(redis: Redis) -> None:
    """Lengths are byte counts whatever the text: ASCII, and an entry with a request id and a decision that are
    not (a JSON escape such as \\u00e9 decodes to one character of two bytes)."""
    script = RespScript(RespTransport(redis), "return ARGV")
    tail = PackedTail()
    tail.add_three("1-0", "req-1", '{"v":1}')
    tail.add_three("2-0", "réq-✓", '{"target":"ünknown 🚗"}')
    tail.add_three("3-0", "", "")
    reply = await script([], ["head"], tail)
    expected = ["head", "1-0", "req-1", '{"v":1}', "2-0", "réq-✓", '{"target":"ünknown 🚗"}', "3-0", "", ""]
    assert reply == [text.encode() for text in expected]
    assert tail.count == 9


async def test_an_error_reply_is_raised_and_the_connection_stays_usable(redis: Redis, keys: Keys) -> None:
    transport = RespTransport(redis)
    await redis.set(keys.prefix + ":text", "x")
    with pytest.raises(ResponseError):
        await transport.call("INCR", keys.prefix + ":text")
    assert await transport.call("GET", keys.prefix + ":text") == b"x"


async def test_a_cancelled_call_does_not_leave_its_reply_for_the_next_one(redis: Redis, keys: Keys) -> None:
    """Cancelled while blocked in XREADGROUP: the late reply must not be read as the answer to another command."""
    await redis.xgroup_create(keys.requests, "g", id="0", mkstream=True)
    transport = RespTransport(redis)
    read = asyncio.create_task(transport.read_group(keys.requests, "g", "c1", count=10, block_ms=300))
    await asyncio.sleep(0.05)
    read.cancel()
    with pytest.raises(asyncio.CancelledError):
        await read
    await redis.xadd(keys.requests, {"data": b"late"})
    await redis.set(keys.prefix + ":k", "v")
    for _ in range(5):  # whichever pooled connection each call gets
        assert await transport.call("GET", keys.prefix + ":k") == b"v"


def test_a_client_speaking_resp3_is_refused() -> None:
    """The transport reads RESP2 shapes, so it refuses a client opened with another protocol (no Redis needed)."""
    with pytest.raises(ValueError, match="protocol=2"):
        RespTransport(Redis.from_url("redis://127.0.0.1:1/0", protocol=3))


async def test_an_attribute_error_on_a_live_connection_is_not_a_network_error(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A programming error inside a call propagates as itself; only a torn-down connection becomes a retried
    ConnectionError."""
    transport = RespTransport(redis)
    connection = await transport._acquire()
    await connection.connect()  # type: ignore[no-untyped-call]
    await transport._release(connection)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise AttributeError("a bug")

    monkeypatch.setattr(type(connection), "send_packed_command", broken)
    with pytest.raises(AttributeError, match="a bug"):
        await transport.call("PING")


async def test_pipelined_commands_answer_in_order_in_one_write(redis: Redis, keys: Keys) -> None:
    transport = RespTransport(redis)
    replies = await transport.pipelined(
        [("SET", keys.prefix + ":a", "1"), ("INCR", keys.prefix + ":a"), ("XADD", keys.requests, "*", "data", "x")]
    )
    assert replies[:2] == [b"OK", 2]
    entries = cast("list[tuple[bytes, dict[bytes, bytes]]]", await redis.xrange(keys.requests))
    assert entries == [(replies[2], {b"data": b"x"})]


async def test_an_error_reply_in_a_pipeline_raises_and_leaves_no_reply_for_the_next_call(
    redis: Redis, keys: Keys
) -> None:
    """The commands after the failing one still ran (Redis does not stop a pipeline), but their replies were not
    read: the connection is dropped, so the next call reads its own reply."""
    transport = RespTransport(redis)
    await redis.set(keys.prefix + ":text", "x")
    with pytest.raises(ResponseError):
        await transport.pipelined([("INCR", keys.prefix + ":text"), ("SET", keys.prefix + ":after", "ran")])
    for _ in range(5):  # whichever pooled connection each call gets
        assert await transport.call("GET", keys.prefix + ":after") == b"ran"
