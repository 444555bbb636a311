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

from devtools.builders import TEST_TIMINGS, request_json
from devtools.workers import read_decisions
from services.demo_redis import embedded_redis_server
from services.gatekeeper.worker import Gatekeeper
from services.keyspace import Keys, ShardKeys
from services.redis_client import connect
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
