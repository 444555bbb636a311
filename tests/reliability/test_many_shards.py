"""Many shards on one Redis (issue 14, item 5): a worker's connections do not grow with its shards, revocations
still bite within a second at 64 shards, and a worker that could not get the connections it needs refuses to start.

At 60 shards a worker once ran 60 blocking reads and 60 connection-event readers on redis-py's pool of 100: the
rest failed with "Too many connections", and revocations took up to 57 s. The cluster case is in
tests/cluster/test_many_shards_cluster.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from devtools.crash_scenarios import revocations_under_load
from devtools.workers import fleetgate_env, publish, start_worker_process, stop
from services.gatekeeper.connections import connections_needed
from services.keyspace import Keys
from services.local_redis import RedisServer, start_redis_server
from services.redis_client import _per_server, client_limits, connect
from services.settings import Settings
from tests.deployment import Deployment
from tests.reliability.conftest import stop_process

pytestmark = [pytest.mark.reliability, pytest.mark.redis]

SHARDS = 64
TRIALS = 30
REQUESTS = 3000
QUICK_UPKEEP = {"block_ms": 100, "reclaim_interval_ms": 100, "trim_interval_ms": 100}
"""Every upkeep job runs within the measurement, so each has taken its connection by then."""


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone: its client count is the worker's and the test's."""
    server = start_redis_server(tmp_path)
    yield server
    server.stop()


async def clients(redis: Redis) -> tuple[int, int]:
    """(connected, blocked) clients of the server."""
    info = await redis.info("clients")
    return int(info["connected_clients"]), int(info["blocked_clients"])


async def decided(redis: Redis, keys: Keys) -> int:
    async with redis.pipeline(transaction=False) as pipe:
        for shard in keys.all_shards:
            pipe.xlen(shard.decisions)
        return sum(int(n) for n in await pipe.execute())


async def worker_clients(server: RedisServer, shards: int, log: Path) -> tuple[int, int, int]:
    """One worker process on `shards` shards deciding requests spread over all of them: the most connections and
    the most blocked reads it held (over the test's own), and how many requests it decided."""
    keys = Keys(f"conns{shards}", shards)
    redis = connect(server.url)
    baseline, _ = await clients(redis)
    worker = start_worker_process(fleetgate_env(server.url, keys.prefix, shards=shards, **QUICK_UPKEEP), log)
    peak = blocked = 0
    try:
        loop = asyncio.get_running_loop()
        for first in range(0, REQUESTS, 100):  # about 3,000 requests a second for a second
            await publish(redis, keys, first, 100)
            await asyncio.sleep(0.03)
            peak = max(peak, (await clients(redis))[0] - baseline)
        deadline = loop.time() + 30
        while await decided(redis, keys) < REQUESTS and loop.time() < deadline:
            peak = max(peak, (await clients(redis))[0] - baseline)
            await asyncio.sleep(0.05)
        for _ in range(20):  # idle now: every read is blocked, and the upkeep jobs keep running
            connected, waiting = await clients(redis)
            peak, blocked = max(peak, connected - baseline), max(blocked, waiting)
            await asyncio.sleep(0.05)
        return peak, blocked, await decided(redis, keys)
    finally:
        assert stop_process(worker) == 0
        await redis.aclose()


async def test_a_worker_holds_as_few_connections_with_64_shards_as_with_one(
    own_server: RedisServer, tmp_path: Path
) -> None:
    """With 1 shard and with 64 a worker decides every request on as many connections, within what it sizes its
    pool for: one multi-stream read per batch in flight and one connection-event reader, whatever the shards."""
    need = connections_needed(Settings(shards=SHARDS))
    assert need == connections_needed(Settings(shards=1))
    one = await worker_clients(own_server, 1, tmp_path / "one.log")
    many = await worker_clients(own_server, SHARDS, tmp_path / "many.log")
    assert one[2] == many[2] == REQUESTS
    assert many[0] <= need.per_server, f"1 shard: {one}, {SHARDS} shards: {many} (connections, blocked, decided)"
    assert many[0] <= one[0] + 2, f"1 shard: {one}, {SHARDS} shards: {many}"
    assert many[1] <= need.consume_loops + need.followers, f"{SHARDS} shards: {many[1]} blocked clients"


@pytest.mark.timeout(180)
async def test_revocations_are_honoured_with_64_shards_on_one_redis(redis: Redis, redis_server: RedisServer) -> None:
    """30 revocations of connections spread over 64 shards, while about 2,000 requests a second flow over all of
    them: each one's connection is refused (how fast: `python -m bench.reliability`, not asserted here)."""
    keys = Keys(f"test-{uuid.uuid4().hex[:10]}", SHARDS)
    delays = await revocations_under_load(redis, keys, redis_server.url, TRIALS)
    assert len(delays) == TRIALS


async def test_each_servers_client_limit_is_read(deployment: Deployment) -> None:
    """maxclients and the clients connected, per server (per master of a cluster), from INFO; CONFIG GET, the
    fallback where INFO does not tell maxclients (before Redis 7), agrees."""
    limits = await client_limits(deployment.client)
    assert len(limits) == (3 if deployment.cluster else 1)
    for maxclients, connected in limits.values():
        assert maxclients >= connected >= 1
    configs = await _per_server(deployment.client, "CONFIG GET", "maxclients")
    assert {node: int(config["maxclients"]) for node, config in configs.items()} == {
        node: maxclients for node, (maxclients, _) in limits.items()
    }


async def test_a_worker_refuses_a_redis_that_cannot_take_its_connections(tmp_path: Path) -> None:
    """On a redis-server with maxclients below what the worker needs, the worker logs one line naming both numbers
    and the fixes, and exits 2 (it would otherwise run with readers failing, revocations among them)."""
    server = start_redis_server(tmp_path, "--maxclients", "6")
    log = tmp_path / "worker.log"
    try:
        env = fleetgate_env(server.url, "few", shards=SHARDS)
        need = connections_needed(Settings(shards=SHARDS)).per_server
        worker = start_worker_process(env, log)
        try:
            assert await asyncio.to_thread(worker.wait, 30) == 2
        finally:
            stop([worker])
    finally:
        server.stop()
    text = log.read_text()
    (line,) = [line for line in text.splitlines() if "gatekeeper not started" in line]
    assert "maxclients 6" in line
    assert f"needs up to {need}" in line
    assert "FLEETGATE_BATCHES_IN_FLIGHT" in line
    assert "Traceback" not in text
