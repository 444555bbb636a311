"""The gatekeeper worker end to end: outcomes, exactly-once, reclaim, dead-letter, revocation, trimming.

Each test runs twice (the `deployment` fixture): on the session's redis-server unsharded, and on the local Redis
Cluster with six shards (where no command may raise CROSSSLOT).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from types import SimpleNamespace
from typing import Any

import pytest

from devtools.builders import TEST_TIMINGS, make_request, make_vehicle, request_json
from devtools.workers import read_decisions
from schemas.access import VehicleAccessConfig
from schemas.connection import ConnectionStatus
from schemas.decision import decide
from schemas.powertrain import Powertrain
from services.gatekeeper import cache as cache_module
from services.gatekeeper import worker as worker_module
from services.gatekeeper.cache import RegistryCache
from services.gatekeeper.upkeep import trim_outputs, trim_requests
from services.gatekeeper.worker import Gatekeeper
from services.keyspace import Keys, ShardKeys
from services.redis_client import Client, get_many
from services.registry import ConnectService, Registry
from services.settings import Settings
from tests.deployment import Deployment

Runner = Callable[[], AbstractAsyncContextManager[Gatekeeper]]


def request(request_id: str, connection_id: str, target: str, kind: str = "signal", **extra: Any) -> bytes:
    return request_json(request_id, connection_id=connection_id, vehicle_id="bev", kind=kind, target=target, **extra)


@pytest.fixture
def redis(deployment: Deployment) -> Client:
    return deployment.client


@pytest.fixture
def keys(deployment: Deployment) -> Keys:
    return deployment.keys


@pytest.fixture
def lane(keys: Keys) -> ShardKeys:
    """The streams of the test vehicle `bev`'s shard: the unsharded ones on one Redis."""
    return keys.shard_of_vehicle("bev")


@pytest.fixture
def gatekeeper_settings(deployment: Deployment) -> Settings:
    return deployment.settings(**TEST_TIMINGS)


@pytest.fixture
async def running(running_later: Runner) -> AsyncIterator[Gatekeeper]:
    async with running_later() as gatekeeper:
        yield gatekeeper


async def decisions(redis: Client, lane: ShardKeys, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Wait until at least `count` decisions are on the lane's stream; return them all, decoded."""
    return await read_decisions(redis, lane.decisions, count, timeout)


async def pending(redis: Client, lane: ShardKeys, group: str = "gatekeeper") -> int:
    return int((await redis.xpending(lane.requests, group))["pending"])


@pytest.mark.usefixtures("running")
async def test_a_decision_names_its_connections_app(
    redis: Client, lane: ShardKeys, connect_service: ConnectService, connection_id: str
) -> None:
    """A decision carries the app of the request's connection: the default app's, another app's, or null when the
    connection is unknown."""
    other = await connect_service.connect("app-2", "user-1", "bev", scope="read_battery")
    for rid, conn in (("default", connection_id), ("other", other.id), ("unknown", "c-unknown")):
        await redis.xadd(lane.requests, {"data": request(rid, conn, "tractionbattery-stateofcharge")})
    got = {d["request_id"]: (d["outcome"], d["app_id"]) for d in await decisions(redis, lane, 3)}
    assert got == {
        "default": ("ALLOWED", "default"),
        "other": ("ALLOWED", "app-2"),
        "unknown": ("UNAUTHORIZED", None),
    }


@pytest.mark.usefixtures("running")
async def test_every_outcome_from_plain_xadd(redis: Client, lane: ShardKeys, connection_id: str) -> None:
    """Plain XADDs of good and bad requests each get exactly one decision with the right outcome."""
    sent = {
        "allowed": request("allowed", connection_id, "tractionbattery-stateofcharge"),
        "denied": request("denied", connection_id, "charge-ischarging"),
        "not-capable": request("not-capable", connection_id, "internalcombustionengine-fuellevel"),
        "unauthorized": request("unauthorized", "c-unknown", "odometer-traveleddistance"),
        "unknown-target": request("unknown-target", connection_id, "warp-drive"),
        "wrong-type": request("wrong-type", connection_id, "odometer-traveleddistance", issued_at=12),
        "carries-scopes": request("carries-scopes", connection_id, "charge-ischarging", scope="read_charge"),
    }
    for data in sent.values():
        await redis.xadd(lane.requests, {"data": data})
    await redis.xadd(lane.requests, {"other": "no data field"})
    await redis.xadd(lane.requests, {"data": b"{not json"})
    await redis.xadd(lane.requests, {"data": b"\xff\xfe\x00binary"})
    await redis.xadd(lane.requests, {"data": b"x" * 2000})
    got = {d["request_id"]: d for d in await decisions(redis, lane, len(sent) + 4)}
    assert {rid: got[rid]["outcome"] for rid in sent} == {
        "allowed": "ALLOWED",
        "denied": "PERMISSION_DENIED",
        "not-capable": "VEHICLE_NOT_CAPABLE",
        "unauthorized": "UNAUTHORIZED",
        "unknown-target": "REJECTED",
        "wrong-type": "REJECTED",
        "carries-scopes": "PERMISSION_DENIED",
    }
    unreadable = [d for rid, d in got.items() if rid.startswith("unreadable:")]
    assert len(unreadable) == 4
    # Under the entry's own id (and, sharded, its shard's tag: entry ids repeat across the shards' streams).
    assert all(d["outcome"] == "REJECTED" and d["request_id"] == lane.unreadable_id(d["entry_id"]) for d in unreadable)
    assert got["denied"]["error"]["type"] == "PERMISSION"
    assert got["wrong-type"]["vehicle_id"] == "bev"  # echoed where readable
    assert len(got) == len(sent) + 4
    assert await pending(redis, lane) == 0


async def test_backlog_before_the_first_worker_is_decided(
    redis: Client, lane: ShardKeys, connection_id: str, running_later: Runner
) -> None:
    """Entries written before any worker (and before the group) existed are decided."""
    for i in range(50):
        await redis.xadd(lane.requests, {"data": request(f"early-{i}", connection_id, "odometer-traveleddistance")})
    async with running_later():
        got = await decisions(redis, lane, 50)
    assert sorted(d["request_id"] for d in got) == sorted(f"early-{i}" for i in range(50))


@pytest.mark.usefixtures("running")
async def test_duplicate_publishes_get_one_decision(redis: Client, lane: ShardKeys, connection_id: str) -> None:
    """The same request_id published five times is decided once; every entry is acknowledged."""
    for _ in range(5):
        await redis.xadd(lane.requests, {"data": request("dup", connection_id, "odometer-traveleddistance")})
    await redis.xadd(lane.requests, {"data": request("marker", connection_id, "odometer-traveleddistance")})
    got = await decisions(redis, lane, 2)
    await asyncio.sleep(0.2)
    got = await decisions(redis, lane, 2)
    assert sorted(d["request_id"] for d in got) == ["dup", "marker"]
    assert await pending(redis, lane) == 0


async def test_entries_of_a_dead_consumer_are_reclaimed_once(
    redis: Client, lane: ShardKeys, gatekeeper_settings: Settings, connection_id: str, running_later: Runner
) -> None:
    """A consumer that read entries and died leaves them pending; a worker reclaims and decides each once."""
    settings = gatekeeper_settings
    await Gatekeeper(settings, redis).ensure_group()
    for i in range(20):
        await redis.xadd(lane.requests, {"data": request(f"r{i}", connection_id, "odometer-traveleddistance")})
    await redis.xreadgroup(settings.group, "dead-consumer", {lane.requests: ">"}, count=100)
    assert await pending(redis, lane) == 20
    async with running_later():
        got = await decisions(redis, lane, 20)
        await asyncio.sleep(0.3)
    assert sorted(d["request_id"] for d in got) == sorted(f"r{i}" for i in range(20))
    assert await pending(redis, lane) == 0


async def test_poison_entry_goes_to_dead_letter_and_the_rest_flows(
    redis: Client, lane: ShardKeys, connection_id: str, monkeypatch: pytest.MonkeyPatch, running_later: Runner
) -> None:
    """An entry whose processing keeps failing is dead-lettered after max_deliveries with the reason; others pass."""
    real_decide = decide

    def failing_decide(request: Any, connection: Any, vehicle: Any) -> Any:
        if request.request_id == "poison":
            raise RuntimeError("boom")
        return real_decide(request, connection, vehicle)

    monkeypatch.setattr(worker_module, "decide", failing_decide)
    await redis.xadd(lane.requests, {"data": request("poison", connection_id, "odometer-traveleddistance")})
    for i in range(10):
        await redis.xadd(lane.requests, {"data": request(f"ok{i}", connection_id, "odometer-traveleddistance")})
    async with running_later():
        got = await decisions(redis, lane, 10)
        deadline = asyncio.get_running_loop().time() + 10
        while not await redis.xlen(lane.deadletter) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
    assert sorted(d["request_id"] for d in got) == sorted(f"ok{i}" for i in range(10))
    (_, fields), *_ = await redis.xrange(lane.deadletter) or []
    letter = json.loads((fields or {})[b"data"])
    assert letter["deliveries"] == 3
    assert "RuntimeError: boom" in letter["reason"]
    assert json.loads(letter["fields"]["data"])["request_id"] == "poison"
    assert await pending(redis, lane) == 0


@pytest.mark.usefixtures("running")
async def test_revocation_applies_within_a_second(
    redis: Client, lane: ShardKeys, connection_id: str, connect_service: ConnectService
) -> None:
    """After the revocation event, requests are UNAUTHORIZED within 1 s (the cache follows connection events)."""
    await redis.xadd(lane.requests, {"data": request("before", connection_id, "odometer-traveleddistance")})
    assert (await decisions(redis, lane, 1))[0]["outcome"] == "ALLOWED"
    await connect_service.revoke(connection_id)
    loop = asyncio.get_running_loop()
    revoked_at = loop.time()
    outcome, n = "ALLOWED", 0
    while outcome == "ALLOWED" and loop.time() - revoked_at < 1.0:
        n += 1
        await redis.xadd(lane.requests, {"data": request(f"after-{n}", connection_id, "odometer-traveleddistance")})
        outcome = (await decisions(redis, lane, n + 1))[-1]["outcome"]
    assert outcome == "UNAUTHORIZED"


async def test_trim_keeps_what_any_group_has_not_acknowledged(
    redis: Client, lane: ShardKeys, connection_id: str, running_later: Runner
) -> None:
    """Trimming removes only entries every group acknowledged: a slow group holds the floor."""
    await redis.xgroup_create(lane.requests, "slow-audit", id="0", mkstream=True)
    for i in range(30):
        await redis.xadd(lane.requests, {"data": request(f"t{i}", connection_id, "odometer-traveleddistance")})
    async with running_later() as gatekeeper:
        await decisions(redis, lane, 30)
        assert await trim_requests(gatekeeper) == 0  # slow-audit has read nothing
        await redis.xreadgroup("slow-audit", "a", {lane.requests: ">"}, count=10)
        assert await trim_requests(gatekeeper) == 0  # ten delivered but still pending
        delivered = await redis.xpending_range(lane.requests, "slow-audit", min="-", max="+", count=10)
        await redis.xack(lane.requests, "slow-audit", *[p["message_id"] for p in delivered])
        assert await trim_requests(gatekeeper) == 10
    assert await redis.xlen(lane.requests) == 20


async def test_decisions_and_dead_letters_are_dropped_by_age(
    redis: Client, lane: ShardKeys, gatekeeper_settings: Settings
) -> None:
    """With a max age set, entries older than it go at the next trim; newer ones and unset streams stay."""
    seconds, _ = await redis.time()
    now_ms = seconds * 1000
    for age_s in (7200, 3000, 10):
        await redis.xadd(lane.decisions, {"data": b"{}"}, id=f"{now_ms - age_s * 1000}-0")
        await redis.xadd(lane.deadletter, {"data": b"{}"}, id=f"{now_ms - age_s * 1000}-0")
    gatekeeper = Gatekeeper(gatekeeper_settings.model_copy(update={"decisions_max_age_s": 3600}), redis)
    assert await trim_outputs(gatekeeper) == 1
    assert await redis.xlen(lane.decisions) == 2
    assert await redis.xlen(lane.deadletter) == 3  # no age limit set for dead letters
    gatekeeper = Gatekeeper(gatekeeper_settings.model_copy(update={"deadletter_max_age_s": 60}), redis)
    assert await trim_outputs(gatekeeper) == 2
    assert await redis.xlen(lane.deadletter) == 1


async def test_a_batch_keeps_the_connection_it_was_checked_against(
    registry: Registry, connect_service: ConnectService
) -> None:
    """A connection event handled while the batch's MGET is in flight does not turn the batch's lookup into None."""
    await registry.add_vehicle(make_vehicle(Powertrain.BEV, vehicle_id="bev"))
    await registry.publish_config(VehicleAccessConfig.select(signals=["odometer-traveleddistance"]))
    cached = (await connect_service.authorize("bev")).id
    cache = RegistryCache(registry, ttl=60)
    await cache.load([make_request("odometer-traveleddistance", connection_id=cached, vehicle_id="bev")])
    batch = [
        make_request("odometer-traveleddistance", connection_id=cached, vehicle_id="bev"),
        make_request("odometer-traveleddistance", connection_id="c-not-cached", vehicle_id="bev"),
    ]
    loading = asyncio.create_task(cache.load(batch))
    await asyncio.sleep(0)  # the load runs up to its MGET for the connection it does not have
    cache.forget_connection(cached)  # what the connection-events task does meanwhile
    lookups = await loading
    assert lookups.connections[cached] is not None
    assert lookups.connections["c-not-cached"] is None
    assert (lookups.hits, lookups.misses) == (3, 1)


async def test_a_fetch_that_overlaps_a_revocation_is_not_cached(
    registry: Registry, connect_service: ConnectService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The MGET reads a connection just before its revocation and the event is handled while the fetch is in
    flight: the batch keeps what it read, but the cache does not, so the next batch sees the revocation (it was
    kept as active until the TTL, a minute, before)."""
    await registry.add_vehicle(make_vehicle(Powertrain.BEV, vehicle_id="bev"))
    await registry.publish_config(VehicleAccessConfig.select(signals=["odometer-traveleddistance"]))
    connection_id = (await connect_service.authorize("bev")).id
    read, release = asyncio.Event(), asyncio.Event()

    async def get_many_then_wait(*args: Any) -> Any:
        records = await get_many(*args)
        read.set()
        await release.wait()  # the revocation and its event happen here, after Redis answered
        return records

    monkeypatch.setattr(cache_module, "get_many", get_many_then_wait)
    cache = RegistryCache(registry, ttl=60)
    batch = [make_request("odometer-traveleddistance", connection_id=connection_id, vehicle_id="bev")]
    loading = asyncio.create_task(cache.load(batch))
    await read.wait()
    await connect_service.revoke(connection_id)
    cache.forget_connection(connection_id)  # what the connection-events task does on the revocation's event
    release.set()
    fetched = await loading
    monkeypatch.setattr(cache_module, "get_many", get_many)
    assert fetched.connections[connection_id] is not None
    assert fetched.connections[connection_id].status is ConnectionStatus.ACTIVE  # type: ignore[union-attr]
    after = await cache.load(batch)
    assert after.connections[connection_id] is not None
    assert after.connections[connection_id].status is ConnectionStatus.REVOKED  # type: ignore[union-attr]


async def test_the_cache_reads_a_record_again_after_its_ttl(
    registry: Registry, connect_service: ConnectService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change that comes with no event (a vehicle's record; a connection event lost) is seen within the TTL:
    the whole cache is emptied every `ttl` seconds, not entry by entry."""
    await registry.add_vehicle(make_vehicle(Powertrain.BEV, vehicle_id="bev"))
    await registry.publish_config(VehicleAccessConfig.select(signals=["odometer-traveleddistance"]))
    connection_id = (await connect_service.authorize("bev")).id
    clock = [1000.0]
    monkeypatch.setattr(cache_module, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    cache = RegistryCache(registry, ttl=60)
    batch = [make_request("odometer-traveleddistance", connection_id=connection_id, vehicle_id="bev")]
    first = await cache.load(batch)
    await connect_service.revoke(connection_id)  # its event is never handled here
    clock[0] += 59
    cached = await cache.load(batch)
    assert (cached.hits, cached.misses) == (2, 0)
    assert cached.connections[connection_id] == first.connections[connection_id]
    clock[0] += 1
    fresh = await cache.load(batch)
    assert (fresh.hits, fresh.misses) == (0, 2)
    assert fresh.connections[connection_id].status is ConnectionStatus.REVOKED  # type: ignore[union-attr]
