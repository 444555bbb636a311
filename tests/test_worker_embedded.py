"""The gatekeeper worker on the embedded Redis-protocol server (fakeredis over TCP, with Lua), as `fleetgate demo`
runs it when no redis-server is on PATH: the fast tier's end-to-end test of the worker, needing no Redis.

The module gives `redis` and `gatekeeper_settings` on that server, so tests/conftest.py's `registry`,
`connection_id` and `running_later` run on it too (and the test is not marked `redis`). fakeredis's XREADGROUP
with BLOCK never blocks when given COUNT, which the worker always sends: the worker polls, which is fine here.
tests/test_gatekeeper.py checks the same against a real redis-server and a Redis Cluster.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from redis.asyncio import Redis

from devtools.builders import TEST_TIMINGS, make_vehicle, request_json
from devtools.workers import read_decisions
from schemas.access import VehicleAccessConfig
from schemas.powertrain import Powertrain
from services.demo_redis import embedded_redis_server
from services.gatekeeper.worker import Gatekeeper, serve
from services.keyspace import Keys, ShardKeys
from services.redis_client import connect
from services.registry import ConnectService, Registry
from services.settings import Settings

Runner = Callable[[], AbstractAsyncContextManager[Gatekeeper]]


@pytest.fixture
def embedded_url() -> Iterator[str]:
    """The URL of a fresh embedded Redis-protocol server, stopped after the test."""
    with embedded_redis_server() as url:
        yield url


@pytest.fixture
async def redis(embedded_url: str) -> AsyncIterator[Redis]:
    """A client of the embedded server, opened as the gatekeeper opens one (RESP2, bytes)."""
    client = connect(embedded_url)
    yield client
    await client.aclose()


@pytest.fixture
def gatekeeper_settings(embedded_url: str, keys: Keys) -> Settings:
    """The test timings, on the embedded server."""
    return Settings(redis_url=embedded_url, key_prefix=keys.prefix, **TEST_TIMINGS)


def request(request_id: str, connection_id: str, target: str) -> bytes:
    return request_json(request_id, connection_id=connection_id, vehicle_id="bev", target=target)


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def decisions(redis: Redis, lane: ShardKeys, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Wait until at least `count` decisions are on the lane's stream; return them all, decoded."""
    return await read_decisions(redis, lane.decisions, count, timeout)


async def test_the_worker_decides_each_outcome_on_the_embedded_server(
    redis: Redis, keys: Keys, connection_id: str, running_later: Runner
) -> None:
    """One request of each outcome, XADDed while the worker runs, gets exactly one decision with that outcome."""
    lane = keys.shard_of_vehicle("bev")
    sent = {
        "allowed": request("allowed", connection_id, "tractionbattery-stateofcharge"),
        "not-capable": request("not-capable", connection_id, "internalcombustionengine-fuellevel"),
        "denied": request("denied", connection_id, "charge-ischarging"),
        "unauthorized": request("unauthorized", "c-unknown", "odometer-traveleddistance"),
        "rejected": request("rejected", connection_id, "warp-drive"),
    }
    async with running_later():
        entry_ids = {rid: text(await redis.xadd(lane.requests, {"data": data})) for rid, data in sent.items()}
        got = await decisions(redis, lane, len(sent))
        await asyncio.sleep(0.2)  # a duplicate decision would show up by now
        got = await decisions(redis, lane, len(sent))
        pending = await redis.xpending(lane.requests, "gatekeeper")
    assert {d["request_id"]: d["outcome"] for d in got} == {
        "allowed": "ALLOWED",
        "not-capable": "VEHICLE_NOT_CAPABLE",
        "denied": "PERMISSION_DENIED",
        "unauthorized": "UNAUTHORIZED",
        "rejected": "REJECTED",
    }
    assert len(got) == len(sent)
    assert {d["request_id"]: d["entry_id"] for d in got} == entry_ids
    by_id = {d["request_id"]: d for d in got}
    assert by_id["allowed"]["error"] is None
    assert by_id["denied"]["error"]["type"] == "PERMISSION"
    assert by_id["denied"]["permission"] == "read_charge"
    assert by_id["rejected"]["vehicle_id"] == "bev"
    assert pending["pending"] == 0


async def test_a_worker_on_several_shards_reads_them_together_on_the_embedded_server(
    embedded_url: str, redis: Redis, keys: Keys
) -> None:
    """With 4 shards the worker reads every shard's requests in one XREADGROUP and every shard's connection events
    in one XREAD, which fakeredis serves too: each request is decided once on its shard, and a revocation bites."""
    sharded = Keys(keys.prefix, 4)
    registry = Registry(redis, sharded)
    await registry.publish_config(VehicleAccessConfig.select(signals=["odometer-traveleddistance"]))
    vehicles = [f"v-{n}" for n in range(40)]
    assert {sharded.shard_of_vehicle(vehicle).index for vehicle in vehicles} == {0, 1, 2, 3}
    for vehicle in vehicles:
        await registry.add_vehicle(make_vehicle(Powertrain.BEV, vehicle_id=vehicle))
    connection = await ConnectService(registry).authorize("v-0")
    lane = sharded.shard_of_vehicle("v-0")

    async def decided() -> dict[str, str]:
        found = [d for shard in sharded.all_shards for d in await read_decisions(redis, shard.decisions, 0)]
        assert len(found) == len({d["request_id"] for d in found}), "a request decided twice"
        return {d["request_id"]: d["outcome"] for d in found}

    settings = Settings(redis_url=embedded_url, key_prefix=sharded.prefix, shards=4, **TEST_TIMINGS)
    gatekeeper = Gatekeeper(settings, redis)
    task = asyncio.create_task(serve(gatekeeper))
    try:
        for n, vehicle in enumerate(vehicles):
            body = request_json(f"r{n}", connection_id=connection.id, vehicle_id=vehicle)
            await redis.xadd(sharded.shard_of_vehicle(vehicle).requests, {"data": body})
        for _ in range(100):
            if len(await decided()) == len(vehicles):
                break
            await asyncio.sleep(0.05)
        outcomes = await decided()
        assert sorted(outcomes) == sorted(f"r{n}" for n in range(len(vehicles)))
        assert outcomes["r0"] == "ALLOWED"

        await ConnectService(registry).revoke(connection.id)
        for n in range(20):  # a request every 50 ms: one within the first second is UNAUTHORIZED
            body = request_json(f"after-{n}", connection_id=connection.id, vehicle_id="v-0")
            await redis.xadd(lane.requests, {"data": body})
            await asyncio.sleep(0.05)
        outcomes = await decided()
        assert "UNAUTHORIZED" in [outcomes.get(f"after-{n}") for n in range(20)]
    finally:
        gatekeeper.stop()
        await asyncio.wait_for(task, timeout=10)
