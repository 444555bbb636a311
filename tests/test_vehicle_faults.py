"""Injected faults on a real redis-server: errors always, by a deterministic draw, or for the next N requests;
RATE_LIMIT with retry_after_s; delays that hold back one vehicle's answer and not its batch; exactly one response
per request with delays too; faults that outlive a service and can be cleared."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

import pytest
from redis.asyncio import Redis

from devtools.builders import make_vehicle, request_json
from schemas.access import VehicleAccessConfig
from schemas.messages import ResponseMessage
from schemas.powertrain import Powertrain
from services.gatekeeper.resp import Entry, RespScript, transport_for
from services.keyspace import Keys
from services.registry import ConnectService, Registry
from services.settings import Settings
from simulator.vehicles.faults import Fault, FaultSet
from simulator.vehicles.respond import RESPOND
from simulator.vehicles.service import VehicleService
from simulator.vehicles.store import load_faults, update_faults
from tests.reliability.conftest import read_stream, wait_until
from tests.test_vehicles_service import vehicles_running

ODOMETER, LOCKED = "odometer-traveleddistance", "closure-islocked"
SIGNALS, COMMANDS = [ODOMETER, LOCKED], ["lock", "unlock"]


@pytest.fixture
async def connections(registry: Registry, connect_service: ConnectService) -> dict[str, str]:
    """Two BEVs, `a` and `b`, each connected with the permissions the selection needs: {vehicle: connection}."""
    await registry.publish_config(VehicleAccessConfig.select(signals=SIGNALS, commands=COMMANDS))
    found = {}
    for vehicle_id in ("a", "b"):
        await registry.add_vehicle(make_vehicle(Powertrain.BEV, vehicle_id=vehicle_id))
        found[vehicle_id] = (await connect_service.authorize(vehicle_id)).id
    return found


Send = Callable[..., Any]


@pytest.fixture
def send(redis: Redis, keys: Keys, connections: dict[str, str]) -> Send:
    async def send_one(request_id: str, target: str, vehicle: str = "a") -> None:
        kind = "command" if target in COMMANDS else "signal"
        body = request_json(
            request_id, connection_id=connections[vehicle], vehicle_id=vehicle, target=target, kind=kind
        )
        await redis.xadd(keys.requests, {"data": body})

    return send_one


async def responses(redis: Redis, keys: Keys, count: int, timeout: float = 15) -> dict[str, ResponseMessage]:
    async def enough() -> bool:
        return int(await redis.xlen(keys.shard(0).responses)) >= count

    assert await wait_until(enough, timeout=timeout)
    found = [ResponseMessage.model_validate(data) for _, data in await read_stream(redis, keys.shard(0).responses)]
    return {response.request_id: response for response in found}


async def add_fault(redis: Redis, keys: Keys, vehicle_id: str, **fields: Any) -> Fault:
    _, after = await update_faults(redis, keys, vehicle_id, lambda faults: faults.added(Fault(**fields), 0))
    return after.faults[-1]


def code(response: ResponseMessage) -> str | None:
    return None if response.error is None else f"{response.error.type}/{response.error.code}"


async def test_an_always_fault_answers_its_error_with_the_stale_value_and_runs_no_command(
    redis: Redis, keys: Keys, send: Send, gatekeeper_settings: Settings, running_later: Any
) -> None:
    """VEHICLE_STATE/ASLEEP always on the odometer: both reads answer it, with the last value the vehicle reported;
    another target answers normally; UPSTREAM/KNOWN_ISSUE on unlock: the vehicle stays as locked as it was."""
    await add_fault(redis, keys, "a", target=ODOMETER, error="ASLEEP")
    await add_fault(redis, keys, "a", target="unlock", error="UPSTREAM/KNOWN_ISSUE")
    async with running_later(), vehicles_running(gatekeeper_settings, redis):
        for number, (request_id, target) in enumerate(
            (("o1", ODOMETER), ("o2", ODOMETER), ("l1", LOCKED), ("u1", "unlock"))
        ):
            await send(request_id, target)
            await responses(redis, keys, number + 1)
        await send("l2", LOCKED)
        answered = await responses(redis, keys, 5)
    for read in ("o1", "o2"):
        assert (answered[read].status, code(answered[read])) == ("ERROR", "VEHICLE_STATE/ASLEEP")
        body = answered[read].body
        assert body is not None
        assert body["unit"] == "kilometers"
        assert answered[read].oem_updated_at is not None
    assert code(answered["l1"]) != "VEHICLE_STATE/ASLEEP"
    assert (code(answered["u1"]), answered["u1"].error and answered["u1"].error.status_code) == (
        "UPSTREAM/KNOWN_ISSUE",
        502,
    )
    assert answered["l2"].body == answered["l1"].body  # the unlock never ran


def expected_draws(request_ids: list[str], fault_id: str, seed: int, probability: float) -> set[str]:
    """The documented draw: BLAKE2b("{seed}:{fault id}:{request id}"), first 8 bytes big-endian, over 2**64."""
    fired = set()
    for request_id in request_ids:
        digest = hashlib.blake2b(f"{seed}:{fault_id}:{request_id}".encode(), digest_size=8).digest()
        if int.from_bytes(digest, "big") / 2**64 < probability:
            fired.add(request_id)
    return fired


async def test_a_probability_fault_fires_on_the_requests_its_draw_picks(
    redis: Redis, keys: Keys, send: Send, gatekeeper_settings: Settings, running_later: Any
) -> None:
    """p = 0.4 on every target of `a`: exactly the requests whose documented draw is below 0.4 get the error, the
    same set on every run (no `random`), and vehicle `b` none."""
    fault = await add_fault(redis, keys, "a", error="UPSTREAM/INVALID_DATA", mode="probability", probability=0.4)
    request_ids = [f"p-{n}" for n in range(16)]
    expected = expected_draws(request_ids, fault.id, gatekeeper_settings.sim_seed, 0.4)
    assert 0 < len(expected) < len(request_ids)
    async with running_later(), vehicles_running(gatekeeper_settings, redis):
        for request_id in request_ids:
            await send(request_id, ODOMETER)
        await send("b-1", ODOMETER, vehicle="b")
        answered = await responses(redis, keys, len(request_ids) + 1)
    assert {r for r in request_ids if code(answered[r]) == "UPSTREAM/INVALID_DATA"} == expected
    assert code(answered["b-1"]) != "UPSTREAM/INVALID_DATA"


async def test_a_next_n_fault_answers_n_requests_then_goes(
    redis: Redis, keys: Keys, send: Send, gatekeeper_settings: Settings, running_later: Any
) -> None:
    """next 2 on lock: the first two locks get UPSTREAM/NO_RESPONSE, the third is answered by the vehicle, and the
    spent fault is gone from the vehicle's faults; a read in between does not count."""
    await add_fault(redis, keys, "a", target="lock", error="NO_RESPONSE", mode="next", remaining=2)
    async with running_later(), vehicles_running(gatekeeper_settings, redis):
        for number, (request_id, target) in enumerate((("k1", "lock"), ("r", LOCKED), ("k2", "lock"), ("k3", "lock"))):
            await send(request_id, target)
            await responses(redis, keys, number + 1)
        answered = await responses(redis, keys, 4)
    assert [code(answered[r]) for r in ("k1", "k2")] == ["UPSTREAM/NO_RESPONSE"] * 2
    assert code(answered["k3"]) != "UPSTREAM/NO_RESPONSE"
    assert code(answered["r"]) is None or code(answered["r"]) != "UPSTREAM/NO_RESPONSE"
    assert (await load_faults(redis, keys, "a"))[0].faults == ()


async def test_a_rate_limit_fault_carries_retry_after(
    redis: Redis, keys: Keys, send: Send, gatekeeper_settings: Settings, running_later: Any
) -> None:
    """RATE_LIMIT/VEHICLE with retry_after_s 30: a 429 RATE_LIMIT error and retry_after_s 30 in the response."""
    await add_fault(redis, keys, "a", error="RATE_LIMIT/VEHICLE", retry_after_s=30)
    async with running_later(), vehicles_running(gatekeeper_settings, redis):
        await send("rl", ODOMETER)
        response = (await responses(redis, keys, 1))["rl"]
    assert response.error is not None
    assert (response.error.type, response.error.code, response.error.status_code) == ("RATE_LIMIT", "VEHICLE", 429)
    assert response.retry_after_s == 30


async def decided(redis: Redis, keys: Keys, running_later: Any, send: Send, requests: list[tuple[str, str]]) -> None:
    """The requests (id, vehicle) decided by a gatekeeper, before any vehicles service reads them."""
    async with running_later():
        for request_id, vehicle in requests:
            await send(request_id, ODOMETER, vehicle=vehicle)

        async def all_decided() -> bool:
            return int(await redis.xlen(keys.decisions)) >= len(requests)

        assert await wait_until(all_decided, timeout=10)


async def test_a_delay_holds_back_one_vehicles_answer_and_not_its_batch(
    redis: Redis, keys: Keys, send: Send, gatekeeper_settings: Settings, running_later: Any
) -> None:
    """1.5 s delay on `a`: in a batch of `a`, `b`, `a`, the answer to `b` is written at once, those to `a` 1.5 s
    later (while the decisions stay pending), each once; nothing is dead-lettered although the delay is longer than
    min_idle_ms times max_deliveries (the service keeps holding what it delays); each delayed answer is the vehicle's
    as of when it is written."""
    await add_fault(redis, keys, "a", delay_ms=1500)
    await decided(redis, keys, running_later, send, [("a-1", "a"), ("b-1", "b"), ("a-2", "a")])
    group = gatekeeper_settings.vehicles_group
    async with vehicles_running(gatekeeper_settings, redis):
        first = await responses(redis, keys, 1)
        assert set(first) == {"b-1"}
        assert (await redis.xpending(keys.decisions, group))["pending"] == 2
        answered = await responses(redis, keys, 3)
        await asyncio.sleep(0.5)  # a second answer to anything would show up now
        pending = (await redis.xpending(keys.decisions, group))["pending"]
    assert await redis.xlen(keys.shard(0).responses) == 3
    assert pending == 0
    assert await redis.xlen(keys.deadletter) == 0
    for delayed in ("a-1", "a-2"):
        assert answered[delayed].responded_at - answered["b-1"].responded_at >= timedelta(seconds=1.4)
        # answered when due, from the vehicle as it is then (simulated time runs at real speed here)
        assert answered[delayed].retrieved_at - answered["b-1"].retrieved_at >= timedelta(seconds=1.4)


async def test_a_delayed_decision_delivered_again_is_answered_once(
    redis: Redis, keys: Keys, send: Send, gatekeeper_settings: Settings, running_later: Any
) -> None:
    """While a delayed decision is held, the same decision published again and handed to another vehicles service
    (a redelivery), which answers it at once: one response in all, and every entry acknowledged."""
    await add_fault(redis, keys, "a", delay_ms=1500)
    await decided(redis, keys, running_later, send, [("once", "a")])
    ((_, decision),) = await read_stream(redis, keys.decisions)
    await redis.xadd(keys.decisions, {"data": json.dumps(decision)})
    shard = keys.shard(0)
    async with vehicles_running(gatekeeper_settings, redis) as holder:
        assert await wait_until(lambda: _true(len(holder.delays) == 2), timeout=5)
        other = VehicleService(gatekeeper_settings, redis, consumer="other")
        await other.start()
        entries: list[Entry] = [
            (cast(bytes, i), cast(dict[bytes, bytes], f)) for i, f in await redis.xrange(shard.decisions) or []
        ]
        script = RespScript(transport_for(redis, shard.decisions), RESPOND)
        responded = await other.process(entries, shard, script, served=True)
        assert sorted(responded.flags.values()) == ["0", "1"]
        assert await wait_until(lambda: _true(len(holder.delays) == 0), timeout=5)
        await asyncio.sleep(0.3)
        pending = (await redis.xpending(keys.decisions, gatekeeper_settings.vehicles_group))["pending"]
    assert await redis.xlen(shard.responses) == 1
    assert pending == 0


async def _true(value: bool) -> bool:
    return value


async def test_faults_outlive_a_service_restart_and_can_be_cleared(
    redis: Redis, keys: Keys, send: Send, gatekeeper_settings: Settings, running_later: Any
) -> None:
    """next 3 on `a`: one answered by a first service, two by the next one (the count lives in Redis), then the
    vehicle answers; of two faults on `b`, clearing one by id leaves the other, clearing all leaves none."""
    await add_fault(redis, keys, "a", error="UPSTREAM/UNKNOWN_ISSUE", mode="next", remaining=3)
    async with running_later():
        async with vehicles_running(gatekeeper_settings, redis):
            await send("r1", ODOMETER)
            await responses(redis, keys, 1)
        async with vehicles_running(gatekeeper_settings, redis):
            for number, request_id in enumerate(("r2", "r3", "r4"), start=2):
                await send(request_id, ODOMETER)
                await responses(redis, keys, number)
        answered = await responses(redis, keys, 4)
    assert [code(answered[r]) == "UPSTREAM/UNKNOWN_ISSUE" for r in ("r1", "r2", "r3", "r4")] == [True] * 3 + [False]
    first = await add_fault(redis, keys, "b", error="ASLEEP")
    second = await add_fault(redis, keys, "b", delay_ms=100)
    await update_faults(redis, keys, "b", lambda faults: faults.cleared([first.id], 0))
    assert [f.id for f in (await load_faults(redis, keys, "b"))[0].faults] == [second.id]
    await update_faults(redis, keys, "b", lambda faults: faults.cleared(None, 0))
    assert (await load_faults(redis, keys, "b"))[0] == FaultSet((), 2)
