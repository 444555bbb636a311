"""Scenarios on a real redis-server: the example scenario played twice on fresh worlds gives the same responses to the
same requests at the same simulated times; its faults and state changes show in them; a file with a typo is refused
in one line with nothing applied; a step the vehicle's state does not allow is reported and the run exits 1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis
from redis.asyncio import Redis
from typer.testing import CliRunner

from devtools.builders import TEST_TIMINGS, make_vehicle, request_json
from fleetgate import app
from schemas.access import VehicleAccessConfig
from schemas.messages import ResponseMessage
from schemas.powertrain import Powertrain
from services.gatekeeper.worker import Gatekeeper
from services.gatekeeper.worker import serve as serve_gatekeeper
from services.keyspace import Keys
from services.local_redis import RedisServer
from services.registry import ConnectService, Registry
from services.settings import Settings
from simulator.vehicles.scenario import load_scenario, plan
from simulator.vehicles.scenario_run import Applied, ScenarioRun
from simulator.vehicles.service import VehicleService
from simulator.vehicles.service import serve as serve_vehicles
from simulator.vehicles.store import clock
from tests.reliability.conftest import read_stream, wait_until

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "scenario-example.toml"
SPEED = 60.0
SOC, CHARGING, LOCKED, ODOMETER = (
    "tractionbattery-stateofcharge",
    "charge-ischarging",
    "closure-islocked",
    "odometer-traveleddistance",
)
REQUESTS = [  # (simulated seconds from the start, request id, target): 8 s into a 30 s report window, between steps
    (8, "soc-0", SOC),
    (68, "charging-1", CHARGING),
    (128, "soc-2", SOC),
    (158, "locked-2", LOCKED),
    (188, "soc-3", SOC),
    (218, "locked-3", LOCKED),
    (248, "soc-4", SOC),
    (308, "lock-5", "lock"),
    (368, "odometer-6", ODOMETER),
]
NOT_REPLAYED = {"response_id", "decision_id", "connection_id", "retrieved_at", "responded_at"}
"""Ids, and the instants of answering (the processing lag): the rest must replay exactly."""


@contextlib.asynccontextmanager
async def pipeline(settings: Settings, redis: Redis) -> AsyncIterator[None]:
    """A gatekeeper and a vehicles service on `settings`' prefix for the block's duration."""
    gatekeeper, vehicles = Gatekeeper(settings, redis), VehicleService(settings, redis)
    tasks = [asyncio.create_task(serve_gatekeeper(gatekeeper)), asyncio.create_task(serve_vehicles(vehicles))]
    try:
        yield
    finally:
        gatekeeper.stop()
        vehicles.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)


async def play_example(redis: Redis, redis_server: RedisServer) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The example scenario on a fresh world with `veh-1`, and REQUESTS sent at their simulated times: what the
    runner applied, and the responses by request id."""
    keys = Keys(prefix=f"test-{uuid.uuid4().hex[:10]}")
    settings = Settings(redis_url=redis_server.url, key_prefix=keys.prefix, **TEST_TIMINGS)
    registry = Registry(redis, keys)
    vehicle = make_vehicle(Powertrain.BEV, vehicle_id="veh-1")
    await registry.add_vehicle(vehicle)
    await registry.publish_config(
        VehicleAccessConfig.select(signals=[SOC, CHARGING, LOCKED, ODOMETER], commands=["lock"])
    )
    connection = (await ConnectService(registry).authorize("veh-1")).id
    checked = plan(EXAMPLE, load_scenario(EXAMPLE), {"veh-1": vehicle}, settings.sim_seed)
    applied: list[Applied] = []
    runner = ScenarioRun(
        redis, keys, checked, vehicles={"veh-1": vehicle}, seed=settings.sim_seed, report=applied.append
    )
    await runner.prepare(SPEED, speed_given=True)
    assert runner.clock is not None
    async with pipeline(settings, redis):
        playing = asyncio.create_task(runner.play())
        for offset, request_id, target in REQUESTS:
            while runner.clock.now() < runner.origin + offset:
                await asyncio.sleep(0.005)
            kind = "command" if target == "lock" else "signal"
            body = request_json(request_id, connection_id=connection, vehicle_id="veh-1", target=target, kind=kind)
            await redis.xadd(keys.requests, {"data": body})
        await playing

        async def all_answered() -> bool:
            return int(await redis.xlen(keys.shard(0).responses)) >= len(REQUESTS)

        assert await wait_until(all_answered, timeout=10)
    answered = {data["request_id"]: data for _, data in await read_stream(redis, keys.shard(0).responses)}
    return [a.json() for a in applied], answered


@pytest.mark.timeout(90)
async def test_the_example_scenario_replays_the_same_responses(redis: Redis, redis_server: RedisServer) -> None:
    """Twice on fresh worlds: the same steps at the same simulated times and the same responses (but ids and answering
    instants); in them the scenario's doing: the flaky upstream twice then cleared, out of coverage, rate limited."""
    first_steps, first = await play_example(redis, redis_server)
    second_steps, second = await play_example(redis, redis_server)
    assert first_steps == second_steps
    assert not [step for step in first_steps if "refused" in step]
    assert {r: _replayed(first[r]) for r in first} == {r: _replayed(second[r]) for r in second}
    responses = {r: ResponseMessage.model_validate(data) for r, data in first.items()}
    assert set(responses) == {request_id for _, request_id, _ in REQUESTS}
    assert responses["soc-0"].body == {"value": 35, "unit": "percent"}
    assert responses["charging-1"].body == {"value": True}
    assert [_code(responses[r]) for r in ("soc-2", "soc-3")] == ["UPSTREAM/NO_RESPONSE"] * 2
    assert _code(responses["locked-2"]) is None
    assert _code(responses["locked-3"]) == "VEHICLE_STATE/UNREACHABLE"
    assert _code(responses["soc-4"]) is None
    assert (_code(responses["lock-5"]), responses["lock-5"].retry_after_s) == ("RATE_LIMIT/VEHICLE", 30)


def _replayed(response: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in response.items() if name not in NOT_REPLAYED}


def _code(response: ResponseMessage) -> str | None:
    return None if response.error is None else f"{response.error.type}/{response.error.code}"


@pytest.fixture
def cli(redis_server: RedisServer, keys: Keys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """`fleetgate vehicles run` on a scenario text, on the test's prefix: (exit code, stdout lines, stderr)."""
    monkeypatch.setenv("FLEETGATE_REDIS_URL", redis_server.url)
    monkeypatch.setenv("FLEETGATE_KEY_PREFIX", keys.prefix)

    def invoke(text: str, *options: str) -> tuple[int, list[str], str]:
        path = tmp_path / "scenario.toml"
        path.write_text(text)
        result = CliRunner().invoke(app, ["vehicles", "run", str(path), *options])
        return result.exit_code, result.stdout.splitlines(), result.stderr

    return invoke


@pytest.fixture
async def bev(registry: Registry) -> None:
    await registry.add_vehicle(make_vehicle(Powertrain.BEV, vehicle_id="veh-1"))
    await registry.add_vehicle(make_vehicle(Powertrain.ICE, vehicle_id="ice-1"))


STEP = '[[steps]]\nat = "1m"\nvehicle = "veh-1"\n'


@pytest.mark.usefixtures("bev")
@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (STEP + "plug = true\n[[steps]]\nat = 2m\n", "not TOML"),
        (
            STEP + "plug = true\n" + STEP + "set = 'tractionbattery-stateofcharge'\nvaleu = 3\n",
            "step 2: unknown key 'valeu'",
        ),
        ('colour = "red"\n' + STEP + "plug = true\n", "unknown key 'colour'"),
        (
            STEP + "set = 'tractionbattery-stateofcharg'\nvalue = 3\n",
            "step 1: unknown signal 'tractionbattery-stateofcharg'",
        ),
        (STEP.replace("1m", "1 minute") + "plug = true\n", "step 1: bad duration '1 minute'"),
        (STEP + 'offline = "forever"\n', "step 1: bad duration 'forever'"),
        (STEP.replace("veh-1", "veh-9") + "plug = true\n", "step 1: unknown vehicle 'veh-9'"),
        (STEP.replace("veh-1", "ice-1") + "plug = true\n", "step 1: vehicle ice-1 has no traction battery"),
        (STEP + "plug = true\noffline = '1m'\n", "step 1: a step does exactly one of"),
        (STEP + "fault = { error = 'SLEEPY' }\n", "step 1: fault.error: unknown error 'SLEEPY'"),
        (STEP + "fault = { error = 'ASLEEP', colour = 'red' }\n", "step 1: fault: unknown key 'colour'"),
        (STEP + "fault = { error = 'ASLEEP', target = 'start-charg' }\n", "step 1: unknown signal or command"),
        (STEP + "clear = 'nap'\n", "step 1: clear: no fault named 'nap' on vehicle veh-1"),
    ],
)
def test_a_scenario_with_a_typo_is_refused_and_nothing_is_applied(
    cli: Any, redis_server: RedisServer, keys: Keys, text: str, problem: str
) -> None:
    """Exit 2 and one line naming the file, the step and the problem; no clock, fault or state written."""
    before = _keys(redis_server, keys)
    code, printed, stderr = cli(text, "--speed", "600")
    assert (code, printed) == (2, [])
    assert stderr.count("\n") == 1
    assert stderr.startswith("error: ")
    assert "scenario.toml: " in stderr
    assert problem in stderr
    assert _keys(redis_server, keys) == before


@pytest.mark.usefixtures("bev")
def test_a_step_the_vehicle_cannot_take_is_reported_and_the_run_exits_1(cli: Any) -> None:
    """Two trips at once: the first sets off, the second is refused by the state model (driving already); each step
    prints one JSON line with its simulated time, the fault its window; exit 1."""
    trip = "trip = { latitude = 34.07, longitude = -118.40 }\n"
    text = STEP.replace("1m", "0s") + trip + STEP.replace("1m", "1s") + trip
    text += STEP.replace("1m", "0s") + "fault = { delay_ms = 250, for = '10s' }\n"
    code, printed, _ = cli(text, "--speed", "600")
    lines = [json.loads(line) for line in printed]
    assert code == 1
    assert [(line["step"], line["did"]) for line in lines] == [
        (3, "fault f1"),
        (1, "set off to 34.07, -118.4"),
        (2, "set off to 34.07, -118.4"),
    ]
    assert lines[2]["refused"] == "vehicle veh-1 is driving already"
    assert "refused" not in lines[1]
    assert lines[0]["fault"]["until"] > lines[0]["fault"]["start"] == lines[0]["simulated_time"]


def _keys(redis_server: RedisServer, keys: Keys) -> list[bytes]:
    with sync_redis.Redis.from_url(redis_server.url) as client:
        return sorted(client.scan_iter(match=f"{keys.prefix}:*"))


@pytest.mark.usefixtures("bev")
@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ([], "too far from the scenario's start 2026-12-01T10:00:00.000Z: play it on a fresh world"),
        (["--speed", "60"], "the simulated clock runs at 1x"),
    ],
)
async def test_a_scenario_does_not_fit_a_world_whose_clock_runs_otherwise(
    cli: Any, redis: Redis, redis_server: RedisServer, keys: Keys, options: list[str], problem: str
) -> None:
    """A clock recorded already (a vehicles service started at real time, 1x): the example's start is refused, and
    so is another --speed; exit 2, one line, nothing written."""
    await clock(redis, keys, 1.0)
    before = _keys(redis_server, keys)
    code, printed, stderr = await asyncio.to_thread(cli, EXAMPLE.read_text(), *options)
    assert (code, printed) == (2, [])
    assert problem in stderr
    assert stderr.count("\n") == 1
    assert _keys(redis_server, keys) == before
