"""The vehicle API's request/reply over the streams, with a real gatekeeper and vehicles service on the test's
redis-server: a denied call ends at its decision, an allowed one at the vehicle's response, a call nobody answers
times out and is forgotten, and entries of other producers are ignored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from devtools.builders import make_vehicle, request_json
from devtools.workers import serving
from schemas.powertrain import Powertrain
from services.gatekeeper.worker import Gatekeeper
from services.gatekeeper.worker import serve as serve_gatekeeper
from services.http.pipeline import Call, Pipeline
from services.keyspace import Keys
from services.registry import ConnectService, Registry
from services.settings import Settings
from simulator.vehicles.service import VehicleService
from simulator.vehicles.service import serve as serve_vehicles


@pytest.fixture
async def pipeline(redis: Redis, keys: Keys) -> AsyncIterator[Pipeline]:
    started = Pipeline(redis, keys, timeout_s=5.0)
    await started.start()
    yield started
    await started.stop()


@pytest.fixture
async def connection_of_bev(registry: Registry) -> str:
    await registry.add_vehicle(make_vehicle(Powertrain.BEV, vehicle_id="bev"))
    return (await ConnectService(registry).authorize("bev", scope="read_battery read_odometer")).id


@pytest.fixture
async def running(redis: Redis, gatekeeper_settings: Settings) -> AsyncIterator[None]:
    async with (
        serving(Gatekeeper(gatekeeper_settings, redis), serve_gatekeeper),
        serving(VehicleService(gatekeeper_settings, redis), serve_vehicles),
    ):
        yield


@pytest.mark.usefixtures("running")
async def test_allowed_calls_end_at_the_vehicles_response_denied_ones_at_the_decision(
    pipeline: Pipeline, connection_of_bev: str
) -> None:
    """An allowed read comes back with its decision and the vehicle's value; an ungranted one with PERMISSION_DENIED
    and no response; an incapable one VEHICLE_NOT_CAPABLE."""
    allowed, denied, incapable = await pipeline.call_many(
        [
            Call(connection_of_bev, "bev", "signal", "tractionbattery-stateofcharge"),
            Call(connection_of_bev, "bev", "command", "lock"),
            Call(connection_of_bev, "bev", "signal", "internalcombustionengine-fuellevel"),
        ]
    )
    assert allowed.decision is not None
    assert allowed.response is not None
    assert (allowed.decision["outcome"], allowed.response["status"]) == ("ALLOWED", "SUCCESS")
    assert allowed.response["request_id"] == allowed.decision["request_id"] == allowed.request_id
    assert allowed.response["body"]["unit"] == "percent"
    assert denied.decision is not None
    assert (denied.decision["outcome"], denied.response) == ("PERMISSION_DENIED", None)
    assert incapable.decision is not None
    assert incapable.decision["outcome"] == "VEHICLE_NOT_CAPABLE"
    assert pipeline.in_flight == 0


@pytest.mark.usefixtures("running")
async def test_many_concurrent_calls_each_get_their_own_answer(pipeline: Pipeline, connection_of_bev: str) -> None:
    """200 calls in flight at once, amid another producer's requests: each completes with its own request id."""
    others = [request_json(f"other-{n}", connection_id=connection_of_bev, vehicle_id="bev") for n in range(50)]
    for body in others:
        await pipeline.redis.xadd(pipeline.keys.requests, {"data": body})
    calls = [Call(connection_of_bev, "bev", "signal", "odometer-traveleddistance") for _ in range(200)]
    replies = await asyncio.gather(*(pipeline.call(call) for call in calls))
    assert len({reply.request_id for reply in replies}) == 200
    assert all(r.response is not None and r.response["request_id"] == r.request_id for r in replies)
    assert pipeline.in_flight == 0


async def test_a_call_nobody_answers_times_out_and_is_forgotten(redis: Redis, keys: Keys) -> None:
    """Without a gatekeeper the call returns timed out after the timeout, and nothing stays in the map."""
    pipeline = Pipeline(redis, keys, timeout_s=0.3)
    await pipeline.start()
    try:
        reply = await pipeline.call(Call("c-1", "veh-1", "signal", "odometer-traveleddistance"))
    finally:
        await pipeline.stop()
    assert reply.timed_out
    assert reply.decision is None
    assert pipeline.in_flight == 0
    assert await redis.xlen(keys.requests) == 1  # the request was sent, once
