"""kill -9 of the vehicles service mid-load (issue 15): exactly one response per ALLOWED decision, and no command
applied twice (each applied command bumps its vehicle's state version once, as does a vehicle's first state: the
versions add up to the writes the responses account for)."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
from collections import Counter
from typing import Any

import pytest
from redis.asyncio import Redis

from devtools.builders import make_vehicle, request_json
from devtools.crash_scenarios import FAST_RECLAIM
from devtools.workers import FLEETGATE, fleetgate_env, start_worker_process, stop
from schemas.access import VehicleAccessConfig
from schemas.powertrain import Powertrain
from services.keyspace import Keys
from services.local_redis import RedisServer
from services.registry import ConnectService, Registry
from services.registry.connect import Authorization
from tests.reliability.conftest import read_stream, wait_until

pytestmark = [pytest.mark.reliability]

VEHICLES = 100
REQUESTS = 6_000
KILLS = 3
READS = ("closure-islocked", "odometer-traveleddistance")
COMMANDS = ("lock", "unlock")


def start_vehicles(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [FLEETGATE, "vehicles", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def connect_fleet(registry: Registry) -> list[tuple[str, str]]:
    """VEHICLES BEVs, each connected with everything the reads and commands need: (vehicle id, connection id)."""
    await registry.add_vehicles(make_vehicle(Powertrain.BEV, vehicle_id=f"v{n}") for n in range(VEHICLES))
    await registry.publish_config(VehicleAccessConfig.select(signals=READS, commands=COMMANDS))
    connections = await ConnectService(registry).authorize_many([Authorization(f"v{n}") for n in range(VEHICLES)])
    return [(c.vehicle_id, c.id) for c in connections]


@pytest.mark.timeout(240)
async def test_kill_9_of_the_vehicles_service_answers_each_allowed_decision_once(
    redis: Redis, keys: Keys, redis_server: RedisServer, registry: Registry
) -> None:
    """6,000 reads and commands on 100 vehicles while the vehicles service is killed with SIGKILL three times and
    restarted: every ALLOWED decision has exactly one response, and the state versions equal the commands
    answered (none applied twice, none lost)."""
    fleet = await connect_fleet(registry)
    env = fleetgate_env(redis_server.url, keys.prefix, **FAST_RECLAIM)
    gatekeeper = start_worker_process(env)
    service = start_vehicles(env)
    rng = random.Random(20261206)
    kill_at = set(rng.sample(range(5, REQUESTS // 500 - 2), KILLS))
    try:
        for chunk in range(REQUESTS // 500):
            async with redis.pipeline(transaction=False) as pipe:
                for n in range(chunk * 500, (chunk + 1) * 500):
                    vehicle, connection = fleet[n % VEHICLES]
                    target = rng.choice(READS + COMMANDS)
                    kind = "command" if target in COMMANDS else "signal"
                    body = request_json(f"r{n}", connection_id=connection, vehicle_id=vehicle, target=target, kind=kind)
                    pipe.xadd(keys.requests, {"data": body})
                await pipe.execute()
            if chunk in kill_at:
                service.send_signal(signal.SIGKILL)
                await asyncio.to_thread(service.wait, 10)
                service = start_vehicles(env)
            await asyncio.sleep(0.25)
        assert await wait_until(lambda: _answered_all(redis, keys), timeout=90)
        await asyncio.sleep(1.5)  # a late second answer from a reclaim would show up now
    finally:
        await asyncio.to_thread(stop, [gatekeeper, service])
    decisions = {d["request_id"]: d for _, d in await read_stream(redis, keys.decisions)}
    responses = [r for _, r in await read_stream(redis, keys.shard(0).responses)]
    answered = Counter(r["request_id"] for r in responses)
    allowed = {rid for rid, d in decisions.items() if d["outcome"] == "ALLOWED"}
    assert len(decisions) == REQUESTS
    assert set(answered) == allowed
    assert set(answered.values()) == {1}
    # Every command writes its vehicle's state once; so does the first answer of a vehicle (its first state).
    writes = Counter(r["vehicle_id"] for r in responses if r["kind"] == "command")
    first: dict[str, str] = {}
    for r in responses:
        first.setdefault(r["vehicle_id"], r["kind"])
    writes.update(vehicle for vehicle, kind in first.items() if kind == "signal")
    assert await _versions(redis, keys) == {vehicle: writes.get(vehicle, 0) for vehicle, _ in fleet}
    assert (await redis.xpending(keys.decisions, "vehicles"))["pending"] == 0


async def _answered_all(redis: Redis, keys: Keys) -> bool:
    decisions = [d for _, d in await read_stream(redis, keys.decisions)]
    allowed = sum(1 for d in decisions if d["outcome"] == "ALLOWED")
    return len(decisions) == REQUESTS and int(await redis.xlen(keys.shard(0).responses)) >= allowed


async def _versions(redis: Redis, keys: Keys) -> dict[str, int]:
    prefix = keys.shard(0).vehicle_state_prefix
    found: dict[str, Any] = {}
    for n in range(VEHICLES):
        version = await redis.hget(f"{prefix}v{n}", "n")
        found[f"v{n}"] = int(version or 0)
    return found
