"""Helpers for the reliability suite: gatekeeper worker processes, request publishing, and exact counting."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from devtools.builders import request_json
from services.keyspace import Keys
from services.redis_client import REDIS_ERRORS, Client
from services.settings import Settings

FLEETGATE = str(Path(sys.executable).with_name("fleetgate"))
"""The `fleetgate` command of the virtualenv running this process."""


def fleetgate_env(redis_url: str, prefix: str, **settings: Any) -> dict[str, str]:
    """The environment of a `fleetgate` process on `prefix`; `settings` are Settings fields (text is parsed)."""
    return Settings(redis_url=redis_url, key_prefix=prefix, **settings).environment()


def start_worker_process(env: dict[str, str], log: Path | None = None) -> subprocess.Popen[bytes]:
    """`fleetgate gatekeeper run` with this environment; its output appended to `log`, or discarded."""
    command = [FLEETGATE, "gatekeeper", "run"]
    if log is None:
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with log.open("ab") as output:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=output)


def start_worker(redis_url: str, keys: Keys, **settings: Any) -> subprocess.Popen[bytes]:
    """A worker on `keys.prefix` and its shards, with quick reads (block_ms 100) unless `settings` say otherwise."""
    return start_worker_process(
        fleetgate_env(redis_url, keys.prefix, **{"block_ms": 100, "shards": keys.shards, **settings})
    )


SPREAD = 1024
"""How many vehicles `publish` spreads the requests of a sharded deployment over."""


def request_body(n: int, connection_id: str = "c-unknown", vehicle_id: str = "v-unknown") -> bytes:
    return request_json(f"r{n}", connection_id=connection_id, vehicle_id=vehicle_id)


async def publish(redis: Client, keys: Keys, first: int, count: int) -> None:
    """Requests r<first> .. r<first + count - 1>, pipelined; retried whole while Redis is away.

    A retried chunk may publish some ids twice: the gatekeeper must still decide each once. With several shards
    the requests name `SPREAD` vehicles, each sent to its vehicle's shard, so that they land on every shard.
    """
    for start in range(first, first + count, 500):
        while True:
            try:
                async with redis.pipeline(transaction=False) as pipe:
                    for n in range(start, min(start + 500, first + count)):
                        if keys.sharded:
                            vehicle = f"v-{n % SPREAD}"
                            stream = keys.shard_of_vehicle(vehicle).requests
                            pipe.xadd(stream, {"data": request_body(n, vehicle_id=vehicle)})
                        else:
                            pipe.xadd(keys.requests, {"data": request_body(n)})
                    await pipe.execute()
                break
            except REDIS_ERRORS:
                await asyncio.sleep(0.1)


async def decided_ids(redis: Redis, keys: Keys) -> Counter[str]:
    """How many decisions each request id has on the decisions stream."""
    counts: Counter[str] = Counter()
    last = "-"
    while True:
        entries = await redis.xrange(keys.decisions, min=last, count=10_000) or []
        if last != "-":
            entries = entries[1:]  # the first is the one we ended on
        if not entries:
            return counts
        for _entry_id, fields in entries:
            counts[json.loads((fields or {})[b"data"])["request_id"]] += 1
        last = entries[-1][0].decode() if isinstance(entries[-1][0], bytes) else str(entries[-1][0])


async def wait_for_decisions(redis: Redis, keys: Keys, count: int, timeout: float) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    have = 0
    while loop.time() < deadline:
        try:
            have = await redis.xlen(keys.decisions)
        except RedisError:
            have = 0
        if have >= count:
            break
        await asyncio.sleep(0.1)
    return have


async def reconnected(redis: Redis, timeout: float = 10) -> None:
    """Until the client's pool has a working connection again (the first command after a restart fails)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await redis.exists("fleetgate-reconnect-probe")  # any command; PING is loosely typed
            return
        except RedisError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)


def stop(workers: list[subprocess.Popen[bytes]]) -> list[int]:
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    return [worker.wait(30) for worker in workers]


async def read_decisions(redis: Client, stream: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Wait until `stream` holds at least `count` decisions (or `timeout` passes); all of them, decoded, in order."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        entries = await redis.xrange(stream) or []
        if len(entries) >= count or asyncio.get_running_loop().time() > deadline:
            return [json.loads((fields or {})[b"data"]) for _, fields in entries]
        await asyncio.sleep(0.02)


class Stoppable(Protocol):
    def stop(self) -> None: ...


S = TypeVar("S", bound=Stoppable)


@asynccontextmanager
async def serving(service: S, serve: Callable[[S], Coroutine[Any, Any, None]], timeout: float = 30) -> AsyncIterator[S]:
    """Run `serve(service)` in a task for the block (a gatekeeper worker, a vehicles service), then stop it and
    wait for its clean exit."""
    task = asyncio.create_task(serve(service))
    try:
        yield service
    finally:
        service.stop()
        await asyncio.wait_for(task, timeout=timeout)
