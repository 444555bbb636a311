"""The vehicle API's pipeline on the local Redis Cluster with six shards: a call's requests go to their vehicles'
shards (one write per master, at once) and each shard's reader brings their decisions back; no command spans two
slots. A stand-in decides here (every request denied): the gatekeeper on a cluster is tested elsewhere."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import cast

import pytest
from redis.asyncio.cluster import RedisCluster

from devtools.local_cluster import RedisClusterProcesses
from services.http.pipeline import Call, Pipeline
from services.keyspace import Keys, ShardKeys

SHARDS = 6
VEHICLES = 24


@pytest.fixture(autouse=True)
def no_command_across_slots(redis_cluster: RedisClusterProcesses) -> Iterator[None]:
    before = redis_cluster.errors("CROSSSLOT")
    yield
    assert redis_cluster.errors("CROSSSLOT") == before


async def deny_each_request(cluster: RedisCluster, shard: ShardKeys, seen: list[str], stop: asyncio.Event) -> None:
    """Answer every request of the shard with a PERMISSION_DENIED decision on the same shard, until `stop`."""
    last: bytes | str = "0-0"
    while not stop.is_set():
        read = await cluster.xread({shard.requests: last}, count=100, block=100)
        for _stream, entries in cast("list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]", read or []):
            for entry_id, fields in entries:
                last = entry_id
                request = json.loads(fields[b"data"])
                seen.append(request["vehicle_id"])
                decision = {"request_id": request["request_id"], "outcome": "PERMISSION_DENIED"}
                await cluster.xadd(shard.decisions, {"data": json.dumps(decision, separators=(",", ":"))})


@pytest.fixture
async def deciding(cluster_client: RedisCluster, keys: Keys) -> AsyncIterator[dict[int, list[str]]]:
    """The vehicle ids each shard's stand-in saw, by shard index."""
    seen: dict[int, list[str]] = {shard.index: [] for shard in keys.all_shards}
    stop = asyncio.Event()
    tasks = [deny_each_request(cluster_client, s, seen[s.index], stop) for s in keys.all_shards]
    running = asyncio.gather(*tasks)
    yield seen
    # Stopped, not cancelled: a cluster command cancelled mid-read once hung the teardown.
    stop.set()
    await asyncio.wait_for(running, timeout=10)


@pytest.fixture
def keys() -> Keys:
    return Keys(prefix=f"test-{uuid.uuid4().hex[:10]}", shards=SHARDS)


async def test_calls_over_every_shard_come_back_with_their_decisions(
    cluster_client: RedisCluster, keys: Keys, deciding: dict[int, list[str]]
) -> None:
    pipeline = Pipeline(cluster_client, keys, timeout_s=10.0)
    vehicles = [f"v-{n}" for n in range(VEHICLES)]
    try:
        replies = await pipeline.call_many([Call(f"c-{v}", v, "signal", "odometer-traveleddistance") for v in vehicles])
    finally:
        await pipeline.stop()
    assert [r.decision["outcome"] if r.decision else None for r in replies] == ["PERMISSION_DENIED"] * VEHICLES
    assert not any(r.timed_out for r in replies)
    for shard in keys.all_shards:
        assert sorted(deciding[shard.index]) == sorted(v for v in vehicles if keys.shard_of_vehicle(v) is shard)
    assert len({keys.shard_of_vehicle(v).index for v in vehicles}) == SHARDS  # every shard had some
    assert pipeline.in_flight == 0
