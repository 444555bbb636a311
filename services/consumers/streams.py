"""What both consumers need from Redis Streams: consumer names, groups, entry ids, and a stop on signals."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

Entry = tuple[bytes, dict[bytes, bytes]]
StreamReply = list[tuple[bytes, list[Entry]]]


def consumer_name() -> str:
    """Unique per process (host and pid), or every process would share one pending list."""
    return f"{socket.gethostname()}-{os.getpid()}"


async def ensure_group(redis: Redis, stream: str, group: str, start_id: str) -> bool:
    """Create `group` on `stream` at `start_id` (and the stream if need be); False if it already existed.

    An existing group keeps its position: `start_id` only applies to a group created now.
    """
    try:
        await redis.xgroup_create(stream, group, id=start_id, mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
        return False
    return True


def as_reply(response: Any) -> StreamReply:
    """XREAD/XREADGROUP's reply as typed lists (redis-py types it Any); None (a timed-out BLOCK) is empty."""
    return cast("StreamReply", response or [])


def split_id(entry_id: bytes | str) -> tuple[int, int]:
    """An entry id as (milliseconds, sequence): ids compare correctly as tuples, not as text."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


@contextmanager
def stop_on_signals(stopping: asyncio.Event) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM set `stopping` instead of raising in the middle of an await.

    The consumer loops check `stopping` between reads, so a batch in hand is finished (stored, acknowledged)
    before they return. Signal handlers can only be installed from the main thread; elsewhere (a test
    driving the CLI from a thread) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stopping.set)
    try:
        yield
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
