"""The reliability scenarios, as functions that return what happened: the tests assert on them, and
`python -m bench.reliability` runs them to write docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from devtools.builders import make_vehicle
from devtools.workers import decided_ids, publish, start_worker, stop, wait_for_decisions
from schemas.access import VehicleAccessConfig
from schemas.powertrain import Powertrain
from services.keyspace import Keys
from services.local_redis import RedisServer, start_redis_server
from services.redis_client import Client, connect
from services.registry import ConnectService, Registry

# Reclaim quickly, so a scenario does not wait 30 s for each dead worker's entries.
FAST_RECLAIM = {"min_idle_ms": "1000", "reclaim_interval_ms": "250", "batch_size": "200"}
PERSISTENCE = {
    "none": (),
    "AOF everysec": ("--appendonly", "yes", "--appendfsync", "everysec"),
    "AOF always": ("--appendonly", "yes", "--appendfsync", "always"),
}


@dataclass(frozen=True)
class Outcome:
    requests: int
    decided: int
    """Distinct request ids with a decision (seen by a live consumer, or on the stream at the end)."""
    duplicated: int
    pending: int
    dead_letters: int
    disruptions: int
    """Kills or crashes that happened."""

    @property
    def lost(self) -> int:
        return self.requests - self.decided


async def crash_workers(redis: Redis, keys: Keys, url: str, *, requests: int, kills: int, seed: int) -> Outcome:
    """Two workers share the group; `kills` times a seeded one is killed with SIGKILL mid-run and restarted."""
    rng = random.Random(seed)
    workers = [start_worker(url, keys, **FAST_RECLAIM) for _ in range(2)]
    chunks = requests // 1000
    kill_at = sorted(rng.sample(range(2, chunks - 1), kills))
    done = 0
    try:
        for chunk in range(chunks):
            await publish(redis, keys, chunk * 1000, 1000)
            if done < kills and chunk == kill_at[done]:
                victim = rng.randrange(2)
                workers[victim].send_signal(signal.SIGKILL)
                await asyncio.to_thread(workers[victim].wait, 10)
                workers[victim] = start_worker(url, keys, **FAST_RECLAIM)
                done += 1
            await asyncio.sleep(0.2)  # about 5k requests a second: the kills land mid-run
        await wait_for_decisions(redis, keys, requests, timeout=90)
        await asyncio.sleep(1.5)  # a late duplicate from a reclaim would show up now
    finally:
        await asyncio.to_thread(stop, workers)
    decided = await decided_ids(redis, keys)
    return Outcome(
        requests=requests,
        decided=len(decided),
        duplicated=sum(1 for n in decided.values() if n > 1),
        pending=int((await redis.xpending(keys.requests, "gatekeeper"))["pending"]),
        dead_letters=int(await redis.xlen(keys.deadletter)),
        disruptions=done,
    )


async def crash_redis(directory: Path, persistence: str, *, requests: int) -> Outcome:
    """SIGKILL redis-server with work in flight, restart it on the same port and directory, finish the run.

    Decisions are counted as a downstream consumer sees them live (XREAD), so a decision published before
    the crash and then lost with the stream still counts as delivered, and a request decided again after
    the restart counts as duplicated.
    """
    options = PERSISTENCE[persistence]
    server = start_redis_server(directory, *options)
    keys = Keys("crash")
    redis = connect(server.url)
    seen: Counter[str] = Counter()
    stop_reading = asyncio.Event()
    workers = [start_worker(server.url, keys, **FAST_RECLAIM) for _ in range(2)]
    reader = asyncio.create_task(_watch_decisions(connect(server.url), keys, seen, stop_reading))
    try:
        await publish(redis, keys, 0, requests // 2)
        while len(seen) < requests // 10:
            await asyncio.sleep(0.01)  # some decided, most still in flight
        server = kill_and_restart(server, directory, options)
        await publish(redis, keys, requests // 2, requests // 2)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while len(seen) < requests and loop.time() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)
        pending = await _retrying(lambda: redis.xpending(keys.requests, "gatekeeper"))
        letters = await redis.xlen(keys.deadletter)
    finally:
        stop_reading.set()
        await reader
        await asyncio.to_thread(stop, workers)
        await redis.aclose()
        server.stop()
    return Outcome(
        requests=requests,
        decided=len(seen),
        duplicated=sum(1 for n in seen.values() if n > 1),
        pending=int(pending["pending"]),
        dead_letters=int(letters),
        disruptions=1,
    )


def kill_and_restart(server: RedisServer, directory: Path, options: tuple[str, ...]) -> RedisServer:
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)
    return start_redis_server(directory, *options, port=server.port)


async def _watch_decisions(redis: Redis, keys: Keys, seen: Counter[str], stop: asyncio.Event) -> None:
    last = "0-0"
    try:
        while not stop.is_set():
            try:
                response = await redis.xread({keys.decisions: last}, count=5000, block=100)
            except RedisError:
                await asyncio.sleep(0.05)
                continue
            streams = cast("list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]", response or [])
            for _stream, entries in streams:
                for entry_id, fields in entries:
                    last = entry_id.decode()
                    seen[json.loads(fields[b"data"])["request_id"]] += 1
    finally:
        await redis.aclose()


async def _retrying(call: Callable[[], Awaitable[Any]]) -> Any:
    """The call's result once Redis answers again (the first command after a restart fails)."""
    for _ in range(50):
        try:
            return await call()
        except RedisError:
            await asyncio.sleep(0.1)
    raise RuntimeError("Redis did not come back")


PROBE_EVERY_S = 0.005


def probe(request_id: str, connection_id: str, vehicle_id: str) -> bytes:
    return json.dumps(
        {
            "request_id": request_id,
            "connection_id": connection_id,
            "vehicle_id": vehicle_id,
            "kind": "signal",
            "target": "odometer-traveleddistance",
            "issued_at": "2026-11-29T12:00:00Z",
        }
    ).encode()


async def decided_as(redis: Client, decisions: str, connection_id: str, after: str, outcome: str) -> bool:
    """Whether a decision for the connection with that outcome was published on `decisions` after entry `after`."""
    for _entry_id, fields in await redis.xrange(decisions, min="(" + after) or []:
        decision = json.loads((fields or {})[b"data"])
        if decision["connection_id"] == connection_id and decision["outcome"] == outcome:
            return True
    return False


async def revocation_delays(redis: Client, keys: Keys, registry: Registry, trials: int) -> list[float]:
    """Seconds from revoke() returning to the decision of the first request it made UNAUTHORIZED, per trial (each
    trial's vehicle on its own shard, when there are several)."""
    connect = ConnectService(registry)
    delays = []
    for trial in range(trials):
        vehicle = make_vehicle(Powertrain.BEV, vehicle_id=f"rv-{trial}")
        lane = keys.shard_of_vehicle(vehicle.id)
        await registry.add_vehicle(vehicle)
        connection = await connect.authorize(vehicle.id)
        newest = await redis.xrevrange(lane.decisions, count=1) or []
        start = newest[0][0].decode() if newest and isinstance(newest[0][0], bytes) else "0-0"
        await redis.xadd(lane.requests, {"data": probe(f"warm-{trial}", connection.id, vehicle.id)})
        while not await decided_as(redis, lane.decisions, connection.id, start, "ALLOWED"):
            await asyncio.sleep(0.01)  # cached as active by the worker now
        await connect.revoke(connection.id)
        revoked_at, n = time.monotonic(), 0
        while True:
            n += 1
            await redis.xadd(lane.requests, {"data": probe(f"p-{trial}-{n}", connection.id, vehicle.id)})
            if await decided_as(redis, lane.decisions, connection.id, start, "UNAUTHORIZED"):
                delays.append(time.monotonic() - revoked_at)
                break
            assert time.monotonic() - revoked_at < 10, "a revocation was not honoured within 10 s"
            await asyncio.sleep(PROBE_EVERY_S)
    return delays


@asynccontextmanager
async def worker_under_load(redis: Client, keys: Keys, url: str, **settings: Any) -> AsyncIterator[Popen[bytes]]:
    """One worker process on `keys` (its shards; `settings` for others, as `redis_cluster=True`) while about
    2,000 other requests a second flow (over every shard), for the block's duration."""
    worker = start_worker(url, keys, **settings)
    stop_load = asyncio.Event()

    async def background_load() -> None:
        sent = 0
        while not stop_load.is_set():
            await publish(redis, keys, 1_000_000 + sent, 100)
            sent += 100
            await asyncio.sleep(0.05)

    load = asyncio.create_task(background_load())
    try:
        yield worker
    finally:
        stop_load.set()
        await load
        await asyncio.to_thread(stop, [worker])


async def revocations_under_load(redis: Client, keys: Keys, url: str, trials: int, **settings: Any) -> list[float]:
    """Revocation delays (seconds, sorted) with one worker process and about 2,000 other requests a second."""
    registry = Registry(redis, keys)
    await registry.publish_config(VehicleAccessConfig.select(signals=["odometer-traveleddistance"]))
    async with worker_under_load(redis, keys, url, **settings):
        return sorted(await revocation_delays(redis, keys, registry, trials))
