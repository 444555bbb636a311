"""The audit consumer on a real redis-server: exact and idempotent storage, crash recovery, shards, its queries."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from typer.testing import CliRunner, Result

from devtools.builders import make_vehicle
from devtools.workers import fleetgate_env
from fleetgate import app
from schemas.access import VehicleAccessConfig
from schemas.messages import ConnectionEventMessage, ConnectionEventType
from schemas.permissions import PermissionSet
from schemas.powertrain import Powertrain
from schemas.problems import Outcome
from services.consumers.audit import Auditor
from services.consumers.audit_store import AuditStore
from services.gatekeeper.worker import Gatekeeper
from services.keyspace import Keys
from services.local_redis import RedisServer
from services.registry import ConnectService, Registry
from services.streams import hash_tag
from tests.test_tail import SHARDS, cli_for, decision_data, publish_per_shard, request_data, wait_for_decisions

Runner = Callable[[], AbstractAsyncContextManager[Gatekeeper]]
Cli = Callable[..., Result]


@dataclass(frozen=True)
class World:
    kept: str
    """Connected to `bev` with read_battery and read_odometer (read_charge unchecked)."""
    revoked: str
    """Connected to `bev-2`, re-authorized to read_odometer only, then revoked."""
    decisions: list[dict[str, Any]]
    """What the gatekeeper published, in stream order."""


@pytest.fixture
async def world(
    registry: Registry, connect_service: ConnectService, redis: Redis, keys: Keys, running_later: Runner
) -> World:
    """Two connections with a consent history (4 events), and real decisions of every outcome."""
    await registry.add_vehicles(
        [make_vehicle(Powertrain.BEV, vehicle_id="bev"), make_vehicle(Powertrain.BEV, vehicle_id="bev-2")]
    )
    await registry.publish_config(
        VehicleAccessConfig.select(
            signals=["tractionbattery-stateofcharge", "odometer-traveleddistance", "charge-ischarging"]
        )
    )
    kept = (await connect_service.authorize("bev", unchecked=["read_charge"])).id
    revoked = (await connect_service.authorize("bev-2")).id
    await connect_service.reauthorize(revoked, scope="read_odometer")
    await connect_service.revoke(revoked)
    sent = [
        ("allowed", kept, "tractionbattery-stateofcharge", "bev"),
        ("denied-1", kept, "charge-ischarging", "bev"),
        ("not-capable", kept, "internalcombustionengine-fuellevel", "bev"),
        ("unknown-target", kept, "warp-drive", "bev"),
        ("denied-2", kept, "charge-ischarging", "bev"),
        ("unauthorized", revoked, "odometer-traveleddistance", "bev-2"),
    ]
    async with running_later():
        # One at a time, each decided before the next is sent: decision times then follow the list's order.
        for n, (request_id, connection_id, target, vehicle_id) in enumerate(sent, start=1):
            await redis.xadd(keys.requests, {"data": request_data(request_id, connection_id, target, vehicle_id)})
            decisions = await wait_for_decisions(redis, keys, n)
    assert [d["request_id"] for d in decisions] == [request_id for request_id, *_ in sent]
    return World(kept, revoked, decisions)


@pytest.fixture
def cli(redis_server: RedisServer, keys: Keys) -> Cli:
    """Run `fleetgate ...` against the test server under this test's key prefix (from async: in a thread)."""

    def invoke(*args: str) -> Result:
        env = {"FLEETGATE_REDIS_URL": redis_server.url, "FLEETGATE_KEY_PREFIX": keys.prefix}
        return CliRunner().invoke(app, list(args), env=env)

    return invoke


@pytest.fixture
def sharded_keys(keys: Keys) -> Keys:
    """This test's prefix with six shards: each shard has its own decisions and connection-events streams."""
    return Keys(prefix=keys.prefix, shards=SHARDS)


def event_data(connection_id: str, vehicle_id: str = "veh-1") -> bytes:
    """A `connection.created` event as the Connect service publishes it, for tests that write the stream directly."""
    return ConnectionEventMessage(
        event_id=uuid.uuid4().hex,
        type=ConnectionEventType.CREATED,
        connection_id=connection_id,
        vehicle_id=vehicle_id,
        permissions=PermissionSet.optional(["read_odometer"]),
        config_version=1,
        scope=None,
        occurred_at=datetime.now(UTC),
    ).encode()


async def group_state(redis: Redis | RedisCluster, stream: str, group: str = "audit") -> tuple[int, int | None]:
    """(pending, entries-read) of the group on the stream: what it was delivered and did not acknowledge, and
    how far it has read (0 before it read anything: fleetgate creates groups with their read counter set)."""
    (state,) = [g for g in await redis.xinfo_groups(stream) if g["name"] == group.encode()]
    return int(state["pending"]), state["entries-read"]


def text(value: bytes | str | None) -> str:
    """An entry id as redis-py returns it (bytes here), as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def rows(db: Path, sql: str) -> list[Any]:
    """Read the audit database with plain sqlite3, not through the code under test."""
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return connection.execute(sql).fetchall()


def stored(db: Path) -> int:
    """Decisions stored so far by a running audit: 0 until it has created its file and tables."""
    try:
        return int(rows(db, "SELECT COUNT(*) FROM decisions")[0][0]) if db.exists() else 0
    except sqlite3.OperationalError:  # the file exists a moment before its tables do
        return 0


async def pending(redis: Redis, keys: Keys, group: str = "audit") -> list[int]:
    """Entries pending in the group on the decisions and the connection-events streams."""
    return [int((await redis.xpending(s, group))["pending"]) for s in (keys.decisions, keys.connection_events)]


async def crash_between_commit_and_ack(auditor: Auditor) -> None:
    """Run the auditor until its first batch is committed, then fail where it would acknowledge it."""

    async def crash(_read: dict[str, list[bytes]]) -> None:
        raise RuntimeError("killed between commit and XACK")

    auditor.ack = crash  # type: ignore[method-assign, assignment]  # this one instance dies at its first XACK
    with pytest.raises(RuntimeError, match="killed"):
        await auditor.run(until_idle=True)


async def audit_run(cli: Cli, db: Path, *args: str) -> dict[str, int]:
    result = await asyncio.to_thread(cli, "audit", "run", "--db", str(db), "--until-idle", *args)
    assert result.exit_code == 0, result.output
    summary: dict[str, int] = json.loads(result.stdout)
    return summary


async def test_run_stores_exactly_the_streams_and_again_adds_nothing(
    cli: Cli, redis: Redis, keys: Keys, world: World, tmp_path: Path
) -> None:
    """`audit run --until-idle` stores one row per decision and event, acknowledges all; a second run adds none."""
    db = tmp_path / "audit.db"
    summary = await audit_run(cli, db)
    assert summary == {"read": 6 + 4, "decisions_added": 6, "events_added": 4, "unreadable_added": 0, "missed": 0}
    stored = dict(rows(db, "SELECT decision_id, outcome FROM decisions"))
    assert stored == {d["decision_id"]: d["outcome"] for d in world.decisions}
    event_ids = [text(entry_id) for entry_id, _ in await redis.xrange(keys.connection_events) or []]
    assert [r[0] for r in rows(db, "SELECT entry_id FROM connection_events ORDER BY entry_ms, entry_seq")] == event_ids
    assert await pending(redis, keys) == [0, 0]

    again = await audit_run(cli, db)
    assert again == {"read": 0, "decisions_added": 0, "events_added": 0, "unreadable_added": 0, "missed": 0}
    assert rows(db, "SELECT COUNT(*) FROM decisions") == [(6,)]
    assert rows(db, "SELECT COUNT(*) FROM connection_events") == [(4,)]


@pytest.mark.parametrize("restart_as", ["same-consumer", "another-consumer"])
async def test_crash_between_commit_and_ack_loses_and_duplicates_nothing(
    redis: Redis, keys: Keys, tmp_path: Path, restart_as: str
) -> None:
    """A batch committed but not acknowledged is re-read on restart (own pending list, or claimed when idle)."""
    for i in range(12):
        await redis.xadd(keys.decisions, {"data": decision_data(f"r{i}", Outcome.PERMISSION_DENIED)})
    db = tmp_path / "audit.db"
    store = AuditStore.open(db)
    await crash_between_commit_and_ack(Auditor(redis, keys, store, consumer="first", batch_size=5, block_ms=10))
    assert rows(db, "SELECT COUNT(*) FROM decisions") == [(5,)]  # the batch was committed
    assert await pending(redis, keys) == [5, 0]  # and not acknowledged

    consumer, claim_idle_ms = ("first", 60_000) if restart_as == "same-consumer" else ("second", 0)
    restarted = Auditor(redis, keys, store, consumer=consumer, batch_size=5, block_ms=10, claim_idle_ms=claim_idle_ms)
    stats = await restarted.run(until_idle=True)
    store.close()
    assert (stats.read, stats.decisions) == (12, 7)  # the 5 re-read, stored before; the 7 never read
    assert sorted(r[0] for r in rows(db, "SELECT request_id FROM decisions")) == sorted(f"r{i}" for i in range(12))
    assert await pending(redis, keys) == [0, 0]


async def test_unreadable_entries_are_kept_and_acknowledged(redis: Redis, keys: Keys, tmp_path: Path) -> None:
    """Entries that are not valid messages go to the `unreadable` table with a reason, and are acknowledged."""
    await redis.xadd(keys.decisions, {"data": decision_data("fine")})
    no_data = text(await redis.xadd(keys.decisions, {"other": "x"}))
    not_json = text(await redis.xadd(keys.decisions, {"data": "{oops"}))
    bad_event = text(
        await redis.xadd(keys.connection_events, {"data": json.dumps({"v": 1, "type": "connection.lost"})})
    )
    store = AuditStore.open(tmp_path / "audit.db")
    stats = await Auditor(redis, keys, store, block_ms=10).run(until_idle=True)
    store.close()
    assert (stats.decisions, stats.events, stats.unreadable) == (1, 0, 3)
    kept = {
        (stream, entry_id): reason
        for stream, entry_id, reason in rows(tmp_path / "audit.db", "SELECT stream, entry_id, reason FROM unreadable")
    }
    assert set(kept) == {
        (keys.decisions, no_data),
        (keys.decisions, not_json),
        (keys.connection_events, bad_event),
    }
    assert kept[keys.decisions, no_data] == "no `data` field"
    assert "type" in kept[keys.connection_events, bad_event]
    assert await pending(redis, keys) == [0, 0]


async def test_queries_answer_from_the_stored_rows(cli: Cli, world: World, tmp_path: Path) -> None:
    """A vehicle's decisions newest first, denials per permission and outcome, and a connection's consent in order."""
    db = tmp_path / "audit.db"
    await audit_run(cli, db)

    async def query(*args: str) -> Any:
        result = await asyncio.to_thread(cli, "audit", "query", "--db", str(db), *args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    bev = [d for d in world.decisions if d["vehicle_id"] == "bev"]
    assert await query("vehicle", "bev") == bev[::-1]
    assert [d["request_id"] for d in await query("vehicle", "bev", "--limit", "2")] == ["denied-2", "unknown-target"]
    assert await query("vehicle", "nobody") == []

    denied = [d for d in world.decisions if d["outcome"] != "ALLOWED"]
    by_permission = {row["permission"]: row["count"] for row in await query("denials", "--by", "permission")}
    assert by_permission == Counter(d["permission"] for d in denied)
    assert by_permission["read_charge"] == 2
    assert None in by_permission  # the unknown target needs no known permission
    by_outcome = {row["outcome"]: row["count"] for row in await query("denials", "--by", "outcome")}
    assert by_outcome == {"PERMISSION_DENIED": 2, "VEHICLE_NOT_CAPABLE": 1, "REJECTED": 1, "UNAUTHORIZED": 1}

    history = await query("consent", world.revoked)
    assert [e["type"] for e in history] == ["connection.created", "connection.reauthorized", "connection.revoked"]
    assert [[p["name"] for p in e["permissions"]] for e in history][1:] == [["read_odometer"], ["read_odometer"]]
    assert history[1]["scope"] == "read_odometer"
    assert [e["type"] for e in await query("consent", world.kept)] == ["connection.created"]


async def test_query_tables_and_a_missing_database(cli: Cli, world: World, tmp_path: Path) -> None:
    """Without --json the queries print tables naming the rows; a database that does not exist is an exit-2 error."""
    db = tmp_path / "audit.db"
    await audit_run(cli, db)
    result = await asyncio.to_thread(cli, "audit", "query", "--db", str(db), "vehicle", "bev")
    assert result.exit_code == 0, result.output
    assert all(request_id in result.stdout for request_id in ("allowed", "denied-1", "not-capable"))
    result = await asyncio.to_thread(cli, "audit", "query", "--db", str(db), "consent", world.revoked)
    assert [t in result.stdout for t in ("connection.created", "connection.reauthorized", "connection.revoked")] == [
        True
    ] * 3
    result = await asyncio.to_thread(cli, "audit", "query", "--db", str(db), "denials")
    assert "read_charge" in result.stdout

    missing = tmp_path / "missing.db"
    result = await asyncio.to_thread(cli, "audit", "query", "--db", str(missing), "denials")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: no audit database at {missing}")
    assert not missing.exists()


async def test_sigterm_finishes_the_batch_and_exits_cleanly(
    redis_server: RedisServer, redis: Redis, keys: Keys, tmp_path: Path
) -> None:
    """`audit run` (no --until-idle) keeps storing until SIGTERM, then exits 0 with its summary and nothing pending."""
    for i in range(20):
        await redis.xadd(keys.decisions, {"data": decision_data(f"r{i}")})
    db = tmp_path / "audit.db"
    env = fleetgate_env(redis_server.url, keys.prefix)
    env["FLEETGATE_AUDIT_DB"] = str(db)  # as docker-compose.yml passes it
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fleetgate", "audit", "run", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while stored(db) != 20:
            assert asyncio.get_running_loop().time() < deadline, "the audit never stored the 20 decisions"
            await asyncio.sleep(0.1)
        await redis.xadd(keys.decisions, {"data": decision_data("late")})  # still running: this one is stored too
        while stored(db) != 21:
            assert asyncio.get_running_loop().time() < deadline, "the audit stopped storing"
            await asyncio.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=10)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert json.loads(stdout)["decisions_added"] == 21
    assert b"Traceback" not in stderr
    assert await pending(redis, keys) == [0, 0]


async def test_sharded_run_stores_every_shard_and_acknowledges_per_shard(
    redis_server: RedisServer, redis: Redis, sharded_keys: Keys, tmp_path: Path
) -> None:
    """With six shards, `audit run` stores every shard's decisions and events, and each shard's group has read and
    acknowledged exactly what its streams hold; events of two shards with the same entry id are both kept."""
    published = await publish_per_shard(redis, sharded_keys, [0, 2, 3, 5], per_shard=3)
    events = {1: "c-one", 4: "c-four", 3: "c-three"}
    for index, connection_id in events.items():
        # Entry ids are unique per stream only: two shards' streams may well hold the same one.
        entry_id = "1000-1" if index != 3 else "*"
        await redis.xadd(sharded_keys.shard(index).connection_events, {"data": event_data(connection_id)}, id=entry_id)
    db = tmp_path / "audit.db"
    cli = cli_for(redis_server.url, sharded_keys)

    summary = await audit_run(cli, db)
    assert summary == {"read": 12 + 3, "decisions_added": 12, "events_added": 3, "unreadable_added": 0, "missed": 0}
    expected = sorted(request_id for ids in published.values() for request_id in ids)
    assert sorted(r[0] for r in rows(db, "SELECT request_id FROM decisions")) == expected
    stored_events = rows(db, "SELECT shard_tag, entry_id, connection_id FROM connection_events")
    assert sorted(connection_id for _, _, connection_id in stored_events) == sorted(events.values())
    assert {tag for tag, entry_id, _ in stored_events if entry_id == "1000-1"} == {
        hash_tag(sharded_keys.shard(1).connection_events),
        hash_tag(sharded_keys.shard(4).connection_events),
    }
    for shard in sharded_keys.all_shards:
        decisions = len(published.get(shard.index, []))
        assert await group_state(redis, shard.decisions) == (0, decisions)
        assert await group_state(redis, shard.connection_events) == (0, 1 if shard.index in events else 0)

    again = await audit_run(cli, db)
    assert again == {"read": 0, "decisions_added": 0, "events_added": 0, "unreadable_added": 0, "missed": 0}


@pytest.mark.parametrize("restart_as", ["same-consumer", "another-consumer"])
async def test_sharded_crash_between_commit_and_ack_loses_and_duplicates_nothing(
    redis: Redis, sharded_keys: Keys, tmp_path: Path, restart_as: str
) -> None:
    """A shard's batch committed but not acknowledged is re-read on restart, on that shard only, stored once."""
    published = await publish_per_shard(redis, sharded_keys, [2], per_shard=7)
    published |= await publish_per_shard(redis, sharded_keys, [4], per_shard=3)
    await redis.xadd(sharded_keys.shard(4).connection_events, {"data": event_data("c-four")})
    db = tmp_path / "audit.db"
    store = AuditStore.open(db)
    await crash_between_commit_and_ack(Auditor(redis, sharded_keys, store, consumer="first", batch_size=5, block_ms=10))
    assert rows(db, "SELECT COUNT(*) FROM decisions") == [(5,)]  # shard 2's first batch was committed
    assert await group_state(redis, sharded_keys.shard(2).decisions) == (5, 5)  # and not acknowledged

    consumer, claim_idle_ms = ("first", 60_000) if restart_as == "same-consumer" else ("second", 0)
    restarted = Auditor(
        redis, sharded_keys, store, consumer=consumer, batch_size=5, block_ms=10, claim_idle_ms=claim_idle_ms
    )
    stats = await restarted.run(until_idle=True)
    store.close()
    assert (stats.read, stats.decisions, stats.events) == (5 + 5 + 1, 5, 1)  # the 5 re-read, stored before
    expected = sorted(request_id for ids in published.values() for request_id in ids)
    assert sorted(r[0] for r in rows(db, "SELECT request_id FROM decisions")) == expected
    for shard in sharded_keys.all_shards:
        assert (await group_state(redis, shard.decisions))[0] == 0
        assert (await group_state(redis, shard.connection_events))[0] == 0
