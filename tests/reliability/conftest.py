"""Helpers shared by the fuzz, fail-closed and Redis-security tests: worker processes, streams, waiting."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from devtools.builders import request_json


def stop_process(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGTERM, then the exit code (SIGKILL if it does not stop within `timeout`)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
        raise


def rss_mib(pid: int) -> float:
    """The process's resident set size (VmRSS of /proc/<pid>/status) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def request_body(request_id: str, connection_id: str, vehicle_id: str, target: str, **extra: Any) -> bytes:
    """A request's `data` as JSON; `extra` adds or overrides fields (kind defaults to signal)."""
    return request_json(request_id, connection_id=connection_id, vehicle_id=vehicle_id, target=target, **extra)


async def read_stream(redis: Redis, stream: str, chunk: int = 10_000) -> list[tuple[str, dict[str, Any]]]:
    """Every entry of a stream as (entry id, its `data` decoded), in order, read in chunks."""
    entries: list[tuple[str, dict[str, Any]]] = []
    start = "-"
    while True:
        batch = await redis.xrange(stream, min=start, count=chunk) or []
        for entry_id, fields in batch:
            entries.append((_text(entry_id), json.loads((fields or {})[b"data"])))
        if len(batch) < chunk:
            return entries
        start = "(" + _text(batch[-1][0])


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float, interval: float = 0.05) -> bool:
    """Poll `check` until it is true or `timeout` seconds pass; returns its last answer."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(interval)
    return True


async def stream_has(redis: Redis, stream: str, count: int) -> bool:
    """Whether the stream holds at least `count` entries."""
    return int(await redis.xlen(stream)) >= count


async def delete_prefix(redis: Redis, prefix: str) -> int:
    """Unlink every key under `prefix:` (the session's server is shared: never FLUSHALL)."""
    removed = 0
    batch: list[bytes] = []
    async for key in redis.scan_iter(match=f"{prefix}:*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            removed += int(await redis.unlink(*batch))
            batch.clear()
    if batch:
        removed += int(await redis.unlink(*batch))
    return removed


def valid_json(request_id: str) -> bytes:
    """A valid request payload (the fuzzers start from it and break it)."""
    body = {"v": 1, "request_id": request_id, "connection_id": "conn-1", "vehicle_id": "veh-1"}
    body |= {"kind": "signal", "target": "odometer-traveleddistance", "issued_at": "2026-11-28T12:00:00Z"}
    return json.dumps(body).encode()
