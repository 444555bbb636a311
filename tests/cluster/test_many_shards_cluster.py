"""Many shards on a Redis Cluster (issue 14, item 5): with 64 shards on three masters a worker reads each shard with
a blocking read of its own (one read cannot span slots) but follows connection events without blocking a connection
per shard, stays within the connections it sizes its pool for, and honours revocations (how fast is a benchmark
figure, `python -m bench.reliability`, not an assertion here)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest
from redis.asyncio.cluster import RedisCluster

from devtools.crash_scenarios import revocation_delays, worker_under_load
from devtools.local_cluster import RedisClusterProcesses
from schemas.access import VehicleAccessConfig
from services.gatekeeper.connections import connections_needed
from services.keyspace import Keys
from services.registry import Registry
from services.settings import Settings

pytestmark = [pytest.mark.reliability]

SHARDS = 64
TRIALS = 30


async def clients(cluster: RedisCluster) -> dict[int, tuple[int, int]]:
    """(connected, blocked) clients of each master, by port."""
    infos = await cluster.info("clients", target_nodes=RedisCluster.PRIMARIES)
    return {
        int(node.rpartition(":")[2]): (int(info["connected_clients"]), int(info["blocked_clients"]))
        for node, info in infos.items()
    }


@pytest.mark.timeout(180)
async def test_revocations_are_honoured_with_64_shards_on_the_cluster(
    redis_cluster: RedisClusterProcesses, cluster_client: RedisCluster
) -> None:
    """30 revocations over 64 shards while about 2,000 requests a second flow over all of them: each honoured; on
    each master the worker's blocked reads are at most its shards there (no blocked reader of connection events per
    shard) and its connections at most what it sizes its pool for."""
    keys = Keys(f"test-{uuid.uuid4().hex[:10]}", SHARDS)
    per_master = Counter(redis_cluster.master_for_key(shard.requests) for shard in keys.all_shards)
    need = connections_needed(Settings(redis_cluster=True, shards=SHARDS)).per_server
    registry = Registry(cluster_client, keys)
    await registry.publish_config(VehicleAccessConfig.select(signals=["odometer-traveleddistance"]))
    crossslot_before = redis_cluster.errors("CROSSSLOT")
    baseline = await clients(cluster_client)
    peak = dict.fromkeys(baseline, (0, 0))
    async with worker_under_load(cluster_client, keys, redis_cluster.url, redis_cluster=True):
        delays = await revocation_delays(cluster_client, keys, registry, TRIALS)
        for _ in range(20):
            for port, (connected, blocked) in (await clients(cluster_client)).items():
                peak[port] = (max(peak[port][0], connected - baseline[port][0]), max(peak[port][1], blocked))
            await asyncio.sleep(0.05)
    assert len(delays) == TRIALS
    for port, (connected, blocked) in peak.items():
        assert blocked <= per_master[port], f"master {port}: {blocked} blocked, {per_master[port]} shards"
        assert connected <= need, f"master {port}: {connected} connections, {need} sized for"
    assert redis_cluster.errors("CROSSSLOT") == crossslot_before
