"""The stream toolkit every fleetgate consumer uses: names, groups, entry ids, backoff, heartbeats, background jobs.

The gatekeeper, the audit and tail consumers (and the services to come: the vehicle API's reply reader, the
vehicles service, webhooks) are all consumers of Redis Streams; each of these rules is written here once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from redis.exceptions import ResponseError

from services.keyspace import Keys
from services.redis_client import REDIS_ERRORS, Client

log = logging.getLogger("fleetgate.streams")

Entry = tuple[bytes, dict[bytes, bytes]]
StreamReply = list[tuple[bytes, list[Entry]]]


def consumer_name() -> str:
    """A consumer name unique to this process: host, pid and a random tag.

    Unique per process, or every process would share one pending list; random too, because a restarted process
    can get its predecessor's pid (pid 1 in a container) and must not take over a dead consumer's pending list
    under its own name: entries a consumer died with are taken over by claiming idle entries (XAUTOCLAIM).
    """
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


async def ensure_group(redis: Client, stream: str, group: str, start_id: str = "0") -> bool:
    """Create `group` on `stream` at `start_id` (and the stream if need be); False if it already existed.

    At "0" by default, so entries written before the first consumer started are delivered. An existing group keeps
    its position: `start_id` only applies to a group created now. A group created at `0` or `$` gets its read
    counter set (ENTRIESREAD: every entry trimmed before it existed, or every entry so far), so that Redis can always
    tell its lag and a gap (take_gap). Not a script: a Redis at its memory limit refuses scripts that may write, and
    a worker must still start there; an entry trimmed between the count and the creation would be reported once as
    missed, which retention's few trims a minute make unlikely.
    """
    entries_read: int | None = None
    if start_id in ("0", "$") and await redis.exists(stream):
        if any(_text(g["name"]) == group for g in await redis.xinfo_groups(stream)):
            return False
        info = await redis.xinfo_stream(stream)
        added = int(info.get("entries-added") or 0)
        entries_read = added if start_id == "$" else added - int(info["length"])
    elif start_id in ("0", "$"):
        entries_read = 0
    try:
        await redis.xgroup_create(stream, group, id=start_id, mkstream=True, entries_read=entries_read)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
        return False
    return True


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def as_reply(response: Any) -> StreamReply:
    """XREAD/XREADGROUP's reply as typed lists (redis-py types it Any); None (a timed-out BLOCK) is empty."""
    return cast("StreamReply", response or [])


def split_id(entry_id: bytes | str) -> tuple[int, int]:
    """An entry id as (milliseconds, sequence): ids compare correctly as tuples, not as text."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def next_id(entry_id: tuple[int, int]) -> tuple[int, int]:
    """The smallest id after `entry_id`."""
    return entry_id[0], entry_id[1] + 1


async def last_id(redis: Client, stream: str) -> bytes | str:
    """The stream's current last entry id, "0-0" if it is empty.

    Rather than `$` in XREAD: with `$` each read would miss what arrived between two reads.
    """
    newest = await redis.xrevrange(stream, count=1)
    return (newest[0][0] if newest else None) or "0-0"


async def claim_idle(
    redis: Client, stream: str, group: str, consumer: str, idle_ms: int, *, count: int = 500
) -> AsyncIterator[list[Entry]]:
    """Take over, for `consumer`, the entries of `group` idle longer than `idle_ms` (their consumer died), in chunks
    of up to `count` (XAUTOCLAIM with its cursor, from the start of the pending list to its end)."""
    cursor: bytes | str = "0-0"
    while True:
        response = await redis.xautoclaim(stream, group, consumer, min_idle_time=idle_ms, start_id=cursor, count=count)
        # The third part lists entries deleted from the stream while pending: XAUTOCLAIM has already dropped them
        # from the pending list, and there is nothing left to read of them.
        cursor, claimed = cast("tuple[bytes, list[Entry]]", response[:2])
        if claimed:
            yield claimed
        if cursor in (b"0-0", "0-0"):
            return


async def forget_dead_consumers(redis: Client, stream: str, group: str, idle_ms: int, keep: str) -> list[str]:
    """Delete the consumers of `group` that hold no pending entry and were idle longer than `idle_ms` (claim their
    entries first): every process has a name of its own, so the names of dead ones would pile up. A live consumer
    deleted while idle is created again by its next read."""
    gone = []
    for consumer in await redis.xinfo_consumers(stream, group):
        raw = consumer["name"]
        name = raw.decode() if isinstance(raw, bytes) else str(raw)
        if name != keep and int(consumer["pending"]) == 0 and int(consumer["idle"]) > idle_ms:
            await redis.xgroup_delconsumer(stream, group, name)
            gone.append(name)
    return gone


# KEYS: the stream. ARGV: the group. Returns how many entries were trimmed from the stream before the group read
# them, since the last call (0: none, or Redis cannot tell: a group that has read nothing since it was created at
# `$`), and moves the group's read counter past them, so that each gap is reported once and its lag is right.
_GAP = """
local function field(list, name)
  for i = 1, #list, 2 do
    if list[i] == name then return list[i + 1] end
  end
  return nil
end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local gone = tonumber(field(info, 'entries-added')) - tonumber(field(info, 'length'))
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  if field(g, 'name') == ARGV[1] then
    local read = field(g, 'entries-read')
    if not read or tonumber(read) >= gone then return 0 end
    redis.call('XGROUP', 'SETID', KEYS[1], ARGV[1], field(g, 'last-delivered-id'), 'ENTRIESREAD', gone)
    return gone - tonumber(read)
  end
end
return 0
"""


async def take_gap(redis: Client, stream: str, group: str) -> int:
    """How many entries of `stream` were trimmed before `group` read them (by the hard cap of a retention) since
    the last call: the consumer recipe's gap check. Each gap is counted once; 0 when there is none."""
    try:
        return int(await redis.eval(_GAP, 1, stream, group))
    except ResponseError as exc:
        if "no such key" in str(exc):
            return 0
        raise


def hash_tag(key: str) -> str:
    """The hash tag of a key (what its cluster slot is computed from), or "" if it has none: Redis's rule."""
    start = key.find("{")
    end = key.find("}", start + 1)
    return key[start + 1 : end] if start != -1 and end > start + 1 else ""


def sweep_block_ms(block_ms: int, shards: int, *, found: bool) -> int | None:
    """How long each shard's read waits in the next sweep over the shards (one read per shard, in turn).

    One read cannot name the streams of two shards on a Redis Cluster (they lie in different slots), so the
    consumers read the shards one after the other. After a sweep that found entries none waits (None): more are
    likely, and a wait on an idle shard would hold up a busy one. After an empty sweep each waits its share of
    `block_ms`, so that a whole sweep waits about `block_ms`; never 0, which to Redis means "forever".
    """
    return None if found else max(1, block_ms // shards)


class Backoff:
    """Exponential backoff after consecutive failures: `first`, doubling, at most `cap` seconds; reset on success."""

    def __init__(self, first: float = 0.1, cap: float = 5.0) -> None:
        self.first = first
        self.cap = cap
        self.failures = 0

    def reset(self) -> None:
        self.failures = 0

    def next_delay(self) -> float:
        """Count one more failure; the delay to wait before trying again."""
        self.failures += 1
        return float(min(self.first * 2 ** (self.failures - 1), self.cap))


async def pause(seconds: float, stopping: asyncio.Event) -> None:
    """Wait `seconds`, or less if `stopping` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), timeout=seconds)


async def every(seconds: float, job: Callable[[], Awaitable[Any]], stopping: asyncio.Event, name: str) -> None:
    """Run `job` every `seconds` until stopping; a failing run is logged under `name` and the next one tried."""
    while not stopping.is_set():
        try:
            await job()
        except REDIS_ERRORS as exc:
            log.warning("%s failed: %s", name, exc)
        except Exception:  # a bug in one run must not end the job for good, silently
            log.exception("%s failed", name)
        await pause(seconds, stopping)


async def beat(redis: Client, keys: Keys, consumer: str, ttl_s: int, *, prefix: str | None = None) -> None:
    """Say that `consumer` is alive for the next `ttl_s` seconds (its heartbeat key expires after that); under
    `prefix`, a service's own, else the gatekeeper's."""
    await redis.set(f"{prefix or keys.heartbeat_prefix}{consumer}", str(time.time()), ex=ttl_s)


async def live_consumers(redis: Client, keys: Keys, host: str = "", *, prefix: str | None = None) -> list[str]:
    """The consumers with a fresh heartbeat (only those of `host`, when given: names start with the host), of the
    gatekeeper or of the service whose heartbeats live under `prefix`."""
    prefix = prefix or keys.heartbeat_prefix
    found = redis.scan_iter(match=f"{prefix}{host}*", count=1000)
    return [key.decode().removeprefix(prefix) async for key in found]


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
