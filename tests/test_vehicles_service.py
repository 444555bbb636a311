"""The vehicles service on a real redis-server: one response per ALLOWED decision, commands that change what later
reads say, vehicle-state refusals, duplicates answered once, denials never answered."""

from __future__ import annotations

import asyncio
import json
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from redis.asyncio import Redis

from devtools.builders import make_vehicle, request_json
from devtools.workers import serving
from schemas.access import VehicleAccessConfig
from schemas.messages import ResponseMessage
from schemas.powertrain import Powertrain
from services.keyspace import Keys
from services.registry import ConnectService, Registry
from services.settings import Settings
from simulator.vehicles import set_value
from simulator.vehicles.service import VehicleService, serve
from simulator.vehicles.store import load_states, save_state
from tests.reliability.conftest import read_stream, wait_until

SIGNALS = ["odometer-traveleddistance", "closure-islocked", "charge-chargelimits", "closure-doors"]
COMMANDS = ["lock", "unlock", "set-charge-limit", "start-charge"]


def vehicles_running(settings: Settings, redis: Redis) -> AbstractAsyncContextManager[VehicleService]:
    return serving(VehicleService(settings, redis), serve)


@pytest.fixture
async def connection(registry: Registry, connect_service: ConnectService) -> str:
    """A BEV `bev` connected with every permission the selection needs, except control_charge (unchecked)."""
    await registry.add_vehicle(make_vehicle(Powertrain.BEV, vehicle_id="bev"))
    await registry.publish_config(VehicleAccessConfig.select(signals=SIGNALS, commands=COMMANDS))
    return (await connect_service.authorize("bev", unchecked=["control_charge"])).id


async def send(redis: Redis, keys: Keys, connection: str, request_id: str, target: str, **extra: Any) -> None:
    kind = "command" if target in COMMANDS else "signal"
    body = request_json(request_id, connection_id=connection, vehicle_id="bev", target=target, kind=kind, **extra)
    await redis.xadd(keys.requests, {"data": body})


async def responses(redis: Redis, keys: Keys, count: int) -> dict[str, ResponseMessage]:
    async def enough() -> bool:
        return int(await redis.xlen(keys.shard(0).responses)) >= count

    assert await wait_until(enough, timeout=15)
    found = [ResponseMessage.model_validate(data) for _, data in await read_stream(redis, keys.shard(0).responses)]
    return {response.request_id: response for response in found}


async def test_commands_change_what_later_reads_say(
    redis: Redis, keys: Keys, connection: str, gatekeeper_settings: Settings, running_later: Any
) -> None:
    """unlock, then closure-islocked reads false; lock, then true; a command ungranted (control_charge) gets its
    PERMISSION_DENIED decision and no response; every response validates against the contract's model."""
    async with running_later(), vehicles_running(gatekeeper_settings, redis):
        await send(redis, keys, connection, "u1", "unlock")
        await responses(redis, keys, 1)
        await send(redis, keys, connection, "r1", "closure-islocked")
        await send(redis, keys, connection, "denied", "set-charge-limit", params={"percent": 70})
        await responses(redis, keys, 2)
        await send(redis, keys, connection, "l1", "lock")
        await responses(redis, keys, 3)
        await send(redis, keys, connection, "r2", "closure-islocked")
        answered = await responses(redis, keys, 4)
    assert answered["u1"].status == "SUCCESS"
    assert answered["u1"].body is None
    assert answered["r1"].body == {"value": False}
    assert answered["l1"].status == "SUCCESS"
    assert answered["r2"].body == {"value": True}
    assert answered["r2"].oem_updated_at is not None
    assert "denied" not in answered
    assert set(answered) == {"u1", "r1", "l1", "r2"}
    decisions = {d["request_id"]: d for _, d in await read_stream(redis, keys.decisions)}
    assert decisions["denied"]["outcome"] == "PERMISSION_DENIED"
    assert all(answered[r].decision_id == decisions[r]["decision_id"] for r in answered)


async def test_a_refused_command_is_a_vehicle_state_error_with_smartcars_strings(
    redis: Redis, keys: Keys, connection: str, gatekeeper_settings: Settings, running_later: Any
) -> None:
    """With the driver's door opened by hand (what `fleetgate vehicles set` does), lock is refused:
    VEHICLE_STATE/DOOR_OPEN, 409, Smartcar's description, in the response of that request."""
    async with running_later(), vehicles_running(gatekeeper_settings, redis) as service:
        await send(redis, keys, connection, "r0", "closure-doors")
        body = (await responses(redis, keys, 1))["r0"].body
        assert body is not None
        assert service.clock is not None
        doors = [{**door, "isOpen": door["row"] == 0 and door["column"] == 0} for door in body["values"]]
        vehicle = await service.registry.vehicle("bev")
        now = service.clock.now()
        stored = (await load_states(redis, keys, [vehicle], gatekeeper_settings.sim_seed, now))["bev"]
        opened = set_value(stored.state, vehicle, "closure-doors", {**body, "values": doors}, now)
        assert await save_state(redis, keys, "bev", stored, opened)
        await send(redis, keys, connection, "lock", "lock")
        answered = await responses(redis, keys, 2)
    error = answered["lock"].error
    assert answered["lock"].status == "ERROR"
    assert error is not None
    assert (error.type, error.code, error.status_code) == ("VEHICLE_STATE", "DOOR_OPEN", 409)
    assert error.description == (
        "The vehicle could not perform your request because one or more of its doors are open."
    )


async def test_a_decision_delivered_twice_is_answered_once(
    redis: Redis, keys: Keys, connection: str, gatekeeper_settings: Settings, running_later: Any
) -> None:
    """The same ALLOWED decision published twice on the decisions stream (a replayed entry): one response."""
    async with running_later():
        await send(redis, keys, connection, "once", "odometer-traveleddistance")
        assert await wait_until(lambda: _has(redis, keys.decisions, 1), timeout=10)
    ((_, decision),) = await read_stream(redis, keys.decisions)
    await redis.xadd(keys.decisions, {"data": json.dumps(decision)})
    async with vehicles_running(gatekeeper_settings, redis):
        await responses(redis, keys, 1)
        await asyncio.sleep(0.5)  # a second response would show up now
        assert await redis.xlen(keys.shard(0).responses) == 1
        pending = await redis.xpending(keys.decisions, gatekeeper_settings.vehicles_group)
    assert pending["pending"] == 0


async def _has(redis: Redis, stream: str, count: int) -> bool:
    return int(await redis.xlen(stream)) >= count
