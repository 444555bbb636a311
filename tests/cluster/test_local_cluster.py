"""A local Redis Cluster, and what the gatekeeper's stream layout needs from one.

The gatekeeper keeps a tenant's request and decision streams under one hash tag (`{fleetgate:s3}:requests`,
`{fleetgate:s3}:decisions`) so a script can touch both atomically; these tests show that works on a real
cluster, what happens without the tag, that consumer groups work through the cluster client, and that acknowledged
(replicated) entries survive the loss of their master.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import cast

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import ClusterCrossSlotError, RedisClusterException

from devtools.local_cluster import RedisClusterProcesses
from tests.cluster.conftest import cluster_client_for

Entries = list[tuple[bytes, dict[bytes, bytes]]]
Streams = list[tuple[bytes, Entries]]

# Record a decision and acknowledge its request in one step: both keys must live in one slot.
DECIDE = """
local decision = redis.call('XADD', KEYS[2], '*', 'request', ARGV[2], 'decision', ARGV[3])
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return {decision, acked}
"""


def tag() -> str:
    """A hash tag of its own per test, so tests sharing the session cluster never see each other's keys."""
    return f"{{fleetgate:{uuid.uuid4().hex[:10]}}}"


async def test_cluster_is_healthy_with_three_masters_and_three_replicas(
    redis_cluster: RedisClusterProcesses, cluster_client: RedisCluster
) -> None:
    """Three masters each with one replica, every node ok, and the client finds the three masters from the URL."""
    masters, replicas = redis_cluster.masters, redis_cluster.replicas
    assert len(masters) == 3
    assert len(replicas) == 3
    assert sorted(replica.master_id or "" for replica in replicas) == sorted(master.node_id for master in masters)
    for node in redis_cluster.nodes:
        info = redis_cluster.cluster_info(node.port)
        assert info["cluster_state"] == "ok"
        assert info["cluster_slots_assigned"] == "16384"
    # Only the masters: CLUSTER SLOTS (which the client reads) lists a replica once it has replicated some data.
    assert {node.port for node in cluster_client.get_primaries()} == {master.port for master in masters}


async def test_hash_tagged_keys_share_a_slot_and_a_script_spans_both(
    redis_cluster: RedisClusterProcesses, cluster_client: RedisCluster
) -> None:
    """Keys with one hash tag share a slot and master, so one script can XADD to one and XACK on the other."""
    requests, decisions = "{fleetgate:s3}:requests", "{fleetgate:s3}:decisions"
    assert await cluster_client.cluster_keyslot(requests) == await cluster_client.cluster_keyslot(decisions)
    assert redis_cluster.master_for_key(requests) == redis_cluster.master_for_key(decisions)
    await cluster_client.xgroup_create(requests, "gatekeeper", id="0", mkstream=True)
    request_id = await cluster_client.xadd(requests, {"target": "battery.soc"})
    await cluster_client.xreadgroup("gatekeeper", "worker-1", {requests: ">"})

    decision_id, acked = await cluster_client.eval(DECIDE, 2, requests, decisions, "gatekeeper", request_id, "allow")

    assert acked == 1
    assert await cluster_client.xpending(requests, "gatekeeper") == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }
    [(entry_id, fields)] = cast(Entries, await cluster_client.xrange(decisions))
    assert entry_id == decision_id
    assert fields == {b"request": request_id, b"decision": b"allow"}


async def test_keys_without_a_shared_tag_fail_with_crossslot(
    redis_cluster: RedisClusterProcesses, cluster_client: RedisCluster
) -> None:
    """Without a shared tag the keys land in two slots: the client refuses the script, and so does the server."""
    requests, decisions = "{fleetgate:s3}:requests", "{fleetgate:s4}:decisions"
    assert key_slot(requests.encode()) != key_slot(decisions.encode())

    # redis-py's cluster client checks the slots itself and never sends the command.
    with pytest.raises(RedisClusterException, match="all keys must map to the same key slot"):
        await cluster_client.eval(DECIDE, 2, requests, decisions, "gatekeeper", "0-1", "allow")

    # A client that does not check (a plain connection to a node) gets the server's CROSSSLOT error instead.
    node = Redis(port=redis_cluster.master_for_key(requests), protocol=2)
    try:
        with pytest.raises(ClusterCrossSlotError) as raised:
            await node.eval(DECIDE, 2, requests, decisions, "gatekeeper", "0-1", "allow")
    finally:
        await node.aclose()
    assert raised.value.status_code == "CROSSSLOT"
    assert await cluster_client.exists(decisions) == 0  # nothing ran


async def test_consumer_group_round_trip_through_the_cluster_client(cluster_client: RedisCluster) -> None:
    """XADD, XGROUP CREATE, XREADGROUP and XACK work through the cluster client, routed by the key's slot."""
    requests = f"{tag()}:requests"
    await cluster_client.xgroup_create(requests, "gatekeeper", id="0", mkstream=True)
    ids = [await cluster_client.xadd(requests, {"n": str(n)}) for n in range(3)]

    reply = await cluster_client.xreadgroup("gatekeeper", "worker-1", {requests: ">"}, count=10)

    [(stream, entries)] = cast(Streams, reply)  # RESP2: a list of [stream, entries]
    assert stream == requests.encode()
    assert [entry_id for entry_id, _fields in entries] == ids
    assert [fields[b"n"] for _entry_id, fields in entries] == [b"0", b"1", b"2"]
    assert (await cluster_client.xpending(requests, "gatekeeper"))["pending"] == 3
    assert await cluster_client.xack(requests, "gatekeeper", *ids) == 3
    assert (await cluster_client.xpending(requests, "gatekeeper"))["pending"] == 0
    assert await cluster_client.xreadgroup("gatekeeper", "worker-1", {requests: ">"}) == []


# Last in the module, and on a cluster of its own: it leaves a master without a replica.
async def test_replicated_entries_survive_their_master_being_killed(disposable_cluster: RedisClusterProcesses) -> None:
    """Entries WAITed onto the replica are all readable through the client after their master is killed."""
    requests = f"{tag()}:requests"
    async with cluster_client_for(disposable_cluster) as client:
        durable = [await client.xadd(requests, {"n": str(n)}) for n in range(20)]
        master = client.get_node_from_key(requests)
        assert master is not None
        assert master.port == disposable_cluster.master_for_key(requests)
        # WAIT counts its own connection's writes; used one command at a time, the client keeps one per node.
        assert await client.wait(1, 1000, target_nodes=master) == 1
        master_id = disposable_cluster.node(master.port).node_id
        [replica] = [node for node in disposable_cluster.replicas if node.master_id == master_id]
        assert await replica_xlen(replica.port, requests) == len(durable)  # so the precondition does not rest on WAIT
        at_risk = [await client.xadd(requests, {"n": f"late-{n}"}) for n in range(5)]  # not WAITed: may be lost

        disposable_cluster.kill(master.port)
        promoted = await asyncio.to_thread(disposable_cluster.wait_for_failover, master.port, 20)

        assert promoted == replica.port
        assert disposable_cluster.master_for_key(requests) == promoted
        read = [entry_id for entry_id, _fields in cast(Entries, await client.xrange(requests))]
        assert read[: len(durable)] == durable
        assert read == (durable + at_risk)[: len(read)]  # whatever survived of the rest, in order, nothing else
        after = await client.xadd(requests, {"n": "after"})  # and the promoted master takes writes
        assert await client.xlen(requests) == len(read) + 1
        assert cast(Entries, await client.xrange(requests, min=after))[0][0] == after


async def replica_xlen(port: int, key: str) -> int:
    """XLEN read from a replica itself (READONLY: answer from its own data instead of redirecting to the master)."""
    async with Redis(port=port, protocol=2, single_connection_client=True) as replica:
        await replica.readonly()
        return int(await replica.xlen(key))
