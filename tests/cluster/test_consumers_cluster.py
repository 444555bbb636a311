"""The consumers on the local Redis Cluster with six shards: `fleetgate tail` and `fleetgate audit` see every
shard's decisions (and the audit every shard's connection events) exactly once, and no command spans two slots.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster

from devtools.local_cluster import RedisClusterProcesses
from services.consumers.audit import Auditor
from services.consumers.audit_store import AuditStore
from services.consumers.tail import TailOptions, tail
from services.keyspace import Keys
from tests.test_audit import audit_run, event_data, group_state, rows
from tests.test_tail import SHARDS, Cli, cli_for, decision_data, in_shard_order, printed_ids, publish_per_shard


@pytest.fixture
def keys() -> Keys:
    """A fresh key prefix per test, with six shards (two per master of the three)."""
    return Keys(prefix=f"test-{uuid.uuid4().hex[:10]}", shards=SHARDS)


@pytest.fixture
def cli(redis_cluster: RedisClusterProcesses, keys: Keys) -> Cli:
    """Run `fleetgate ...` on the cluster (FLEETGATE_REDIS_CLUSTER, FLEETGATE_SHARDS=6); from async: in a thread."""
    return cli_for(redis_cluster.url, keys, cluster=True)


@pytest.fixture(autouse=True)
def no_command_across_slots(redis_cluster: RedisClusterProcesses) -> Iterator[None]:
    """Every multi-key command of the test stayed in one slot: the nodes sent no CROSSSLOT error."""
    before = redis_cluster.errors("CROSSSLOT")
    yield
    assert redis_cluster.errors("CROSSSLOT") == before


class Collected:
    """A tail printer that keeps what it is given."""

    def __init__(self) -> None:
        self.decisions: list[dict[str, Any]] = []
        self.warnings: list[str] = []

    def decision(self, decision: dict[str, Any]) -> None:
        self.decisions.append(decision)

    def warning(self, message: str) -> None:
        self.warnings.append(message)


def all_ids(published: dict[int, list[str]]) -> list[str]:
    return sorted(request_id for ids in published.values() for request_id in ids)


async def test_shards_live_on_every_master(cluster_client: RedisCluster, keys: Keys) -> None:
    """The premise of the other tests: the six shards' streams spread over the three masters."""
    masters = {cluster_client.get_node_from_key(shard.decisions) for shard in keys.all_shards}
    assert None not in masters
    assert len(masters) == 3


async def test_tail_shows_every_shards_decisions_exactly_once(cluster_client: RedisCluster, keys: Keys) -> None:
    """A plain tail from the start shows each decision of every shard once, each shard's in order, then waits."""
    published = await publish_per_shard(cluster_client, keys, list(range(SHARDS)), per_shard=2)
    printer, stopping = Collected(), asyncio.Event()
    following = asyncio.create_task(tail(cluster_client, keys, TailOptions(from_start=True), printer, stopping))
    deadline = asyncio.get_running_loop().time() + 10
    while len(printer.decisions) < 2 * SHARDS and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)  # a few more sweeps over every shard: nothing is shown twice
    stopping.set()
    assert (await asyncio.wait_for(following, timeout=5)).shown == 2 * SHARDS
    shown = [decision["request_id"] for decision in printer.decisions]
    assert sorted(shown) == all_ids(published)
    assert in_shard_order(shown, published)
    assert printer.warnings == []


async def test_tail_command_reads_the_cluster(cli: Cli, cluster_client: RedisCluster, keys: Keys) -> None:
    """`fleetgate tail` with FLEETGATE_REDIS_CLUSTER and six shards prints every shard's decisions."""
    published = await publish_per_shard(cluster_client, keys, list(range(SHARDS)), per_shard=2)
    result = await asyncio.to_thread(cli, "tail", "--from-start", "--count", str(2 * SHARDS))
    assert result.exit_code == 0, result.output
    assert sorted(printed_ids(result.stdout)) == all_ids(published)


async def test_tail_group_acknowledges_on_each_shard(cli: Cli, cluster_client: RedisCluster, keys: Keys) -> None:
    """With --group every shard's stream has the group, all it read acknowledged; a next run starts after it."""
    published = await publish_per_shard(cluster_client, keys, list(range(SHARDS)), per_shard=2)
    args = ["tail", "--group", "viewers", "--from-start"]
    result = await asyncio.to_thread(cli, *args, "--count", str(2 * SHARDS))
    assert result.exit_code == 0, result.output
    assert sorted(printed_ids(result.stdout)) == all_ids(published)
    for shard in keys.all_shards:
        assert await group_state(cluster_client, shard.decisions, "viewers") == (0, 2)

    await cluster_client.xadd(keys.shard(SHARDS - 1).decisions, {"data": decision_data("later")})
    result = await asyncio.to_thread(cli, *args, "--count", "1")
    assert printed_ids(result.stdout) == ["later"]
    assert await group_state(cluster_client, keys.shard(SHARDS - 1).decisions, "viewers") == (0, 3)


async def test_audit_command_stores_every_shards_entries_once(
    cli: Cli, cluster_client: RedisCluster, keys: Keys, tmp_path: Path
) -> None:
    """`fleetgate audit run` on the cluster stores each shard's decisions and events once and acknowledges them."""
    published = await publish_per_shard(cluster_client, keys, list(range(SHARDS)), per_shard=2)
    for shard in keys.all_shards:
        await cluster_client.xadd(shard.connection_events, {"data": event_data(f"c-{shard.index}")})
    db = tmp_path / "audit.db"

    summary = await audit_run(cli, db)
    assert summary == {
        "read": 3 * SHARDS,
        "decisions_added": 2 * SHARDS,
        "events_added": SHARDS,
        "unreadable_added": 0,
        "missed": 0,
    }
    assert sorted(r[0] for r in rows(db, "SELECT request_id FROM decisions")) == all_ids(published)
    assert sorted(r[0] for r in rows(db, "SELECT connection_id FROM connection_events")) == sorted(
        f"c-{i}" for i in range(SHARDS)
    )
    for shard in keys.all_shards:
        assert await group_state(cluster_client, shard.decisions) == (0, 2)
        assert await group_state(cluster_client, shard.connection_events) == (0, 1)

    again = await audit_run(cli, db)
    assert again == {"read": 0, "decisions_added": 0, "events_added": 0, "unreadable_added": 0, "missed": 0}


async def test_audit_claims_a_dead_consumers_batch_on_the_cluster(
    cluster_client: RedisCluster, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch committed but never acknowledged (its consumer died) is claimed by another, stored once."""
    published = await publish_per_shard(cluster_client, keys, list(range(SHARDS)), per_shard=3)
    db = tmp_path / "audit.db"

    async def crash(_self: Auditor, _read: dict[str, list[bytes]]) -> None:
        raise RuntimeError("killed between commit and XACK")

    store = AuditStore.open(db)
    try:
        with monkeypatch.context() as patch:
            patch.setattr(Auditor, "ack", crash)
            dead = Auditor(cluster_client, keys, store, consumer="first", batch_size=2, block_ms=10)
            with pytest.raises(RuntimeError, match="killed"):
                await dead.run(until_idle=True)
        assert await group_state(cluster_client, keys.shard(0).decisions) == (2, 2)
        stats = await Auditor(cluster_client, keys, store, consumer="second", block_ms=10, claim_idle_ms=0).run(
            until_idle=True
        )
    finally:
        store.close()
    assert (stats.read, stats.decisions) == (3 * SHARDS, 3 * SHARDS - 2)  # the claimed 2 were stored before
    assert sorted(r[0] for r in rows(db, "SELECT request_id FROM decisions")) == all_ids(published)
    for shard in keys.all_shards:
        assert await group_state(cluster_client, shard.decisions) == (0, 3)
