"""What both consumers need from Redis Streams: consumer names, groups, entry ids, shard sweeps, a stop on signals."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from redis.exceptions import ResponseError

from services.redis_client import Client

Entry = tuple[bytes, dict[bytes, bytes]]
StreamReply = list[tuple[bytes, list[Entry]]]


def consumer_name() -> str:
    """Unique per process (host and pid), or every process would share one pending list."""
    return f"{socket.gethostname()}-{os.getpid()}"


async def ensure_group(redis: Client, stream: str, group: str, start_id: str) -> bool:
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


def sweep_block_ms(block_ms: int, shards: int, *, found: bool) -> int | None:
    """How long each shard's read waits in the next sweep over the shards (one read per shard, in turn).

    One read cannot name the streams of two shards on a Redis Cluster (they lie in different slots), so the
    consumers read the shards one after the other. After a sweep that found entries none waits (None): more are
    likely, and a wait on an idle shard would hold up a busy one. After an empty sweep each waits its share of
    `block_ms`, so that a whole sweep waits about `block_ms`; never 0, which to Redis means "forever".
    """
    return None if found else max(1, block_ms // shards)


def hash_tag(key: str) -> str:
    """The hash tag of a key (what its cluster slot is computed from), or "" if it has none: Redis's rule."""
    start = key.find("{")
    end = key.find("}", start + 1)
    return key[start + 1 : end] if start != -1 and end > start + 1 else ""


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
