"""Advice and what-if against a world whose answer is known (world.py builds it: a small fleet, an app with
designed grants, a designed load decided by the real gatekeeper while the usage consumer counts). Every figure is
asserted exactly, from the Python API and from the command line, on the session's redis-server and on the local
Redis Cluster with six shards (conftest.py)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.grant import ConnectionFilters, FilterPowertrain
from services.insights.advice import Advice, advise
from services.insights.whatif import what_if
from services.keyspace import Keys
from services.redis_client import Client
from services.registry import Registry
from services.settings import Settings
from tests.deployment import Deployment
from tests.insights.world import APP, NEXT, NEXT_TOML, Runner, build, decide_load
from tests.test_tail import cli_for


@pytest.fixture
async def world(
    registry: Registry, redis: Client, keys: Keys, gatekeeper_settings: Settings, running_later: Runner
) -> Settings:
    """The world built, its load decided by a gatekeeper and counted by a usage consumer running meanwhile."""
    built = await build(registry)
    await decide_load(redis, keys, gatekeeper_settings, running_later, built.connections)
    return gatekeeper_settings


async def test_the_advice_matches_the_designed_usage(registry: Registry, world: Settings) -> None:
    """ALLOWED uses per permission and target, denials, holders and lackers, and each verdict: read_vin granted
    and never used, read_charge and control_security unchecked by owners, read_odometer denied to the scoped
    connection (stale), read_tires asked outside the config; not-capable answers by target, make and powertrain."""
    advice = await advise(registry, world, APP, timedelta(hours=1))
    assert (advice.config_version, advice.connections, advice.counting, advice.behind) == (1, 11, True, 0)
    assert advice.outcomes == {
        "ALLOWED": 10,
        "PERMISSION_DENIED": 5,
        "VEHICLE_NOT_CAPABLE": 4,
        "UNAUTHORIZED": 1,
        "REJECTED": 1,
    }
    rows = {p.permission: p for p in advice.permissions}
    table = {
        name: (p.requested, p.required, p.allowed, p.denied, p.held_by, p.lacked_by, p.verdict)
        for name, p in rows.items()
    }
    assert table == {
        "control_security": (True, False, 1, 1, 9, 2, "unchecked"),
        "read_battery": (True, False, 3, 0, 10, 1, None),
        "read_charge": (True, False, 1, 2, 7, 4, "unchecked"),
        "read_odometer": (True, True, 5, 1, 10, 1, "stale_grants"),
        "read_vin": (True, False, 0, 0, 9, 2, "unused"),
        "read_tires": (False, False, 0, 1, 0, 11, "unrequested"),
    }
    assert rows["read_odometer"].allowed_by_target == {"odometer-traveleddistance": 5}
    assert rows["control_security"].allowed_by_target == {"lock": 1}
    assert [(n.target, n.make, n.powertrain, n.count) for n in advice.not_capable] == [
        ("tractionbattery-stateofcharge", "Ford", "ICE", 2),
        ("charge-ischarging", "Toyota", "PHEV", 1),
        ("vehicleidentification-vin", "Tesla", "BEV", 1),
    ]
    assert (await advise(registry, world, "default", timedelta(hours=1))).outcomes == {"ALLOWED": 1}


async def test_the_window_reads_only_its_hours(registry: Registry, redis: Client, keys: Keys, world: Settings) -> None:
    """Counts of two days ago are outside a one-day window and inside a three-day one."""
    old_hour = int(time.time()) // 3600 - 48
    await redis.hset(keys.shard(0).usage(APP, old_hour), mapping={"o|ALLOWED": 7, "a|read_vin": 7})

    def read_vin(advice: Advice) -> tuple[int, str | None]:
        (row,) = [p for p in advice.permissions if p.permission == "read_vin"]
        return row.allowed, row.verdict

    assert read_vin(await advise(registry, world, APP, timedelta(days=1))) == (0, "unused")
    assert read_vin(await advise(registry, world, APP, timedelta(days=3))) == (7, None)


@pytest.mark.usefixtures("world")
async def test_what_if_matches_the_designed_fleet(registry: Registry) -> None:
    """Under the app's filters (ICE, BEV, PHEV; no UNKNOWN) 10 of 11 vehicles could connect; each selection's
    capable share follows the fleet's composition; of 11 active connections, 2 lack a newly required permission
    and 9 only the new optional read_fuel. Other filters give other figures."""
    result = await what_if(registry, NEXT, app_id=APP)
    assert (result.vehicles, result.connectable) == (11, 10)
    assert [(s.name, s.vehicles, s.connectable) for s in result.by_powertrain] == [
        ("BEV", 4, 4),
        ("ICE", 3, 3),
        ("PHEV", 2, 2),
        ("HEV", 1, 1),
        ("UNKNOWN", 1, 0),
    ]
    assert [(s.name, s.vehicles, s.connectable) for s in result.by_make] == [
        ("Ford", 4, 4),
        ("Tesla", 4, 4),
        ("Toyota", 2, 2),
        ("Acme", 1, 0),
    ]
    assert {t.target: (t.capable, t.share) for t in result.targets} == {
        "odometer-traveleddistance": (10, 1.0),
        "tractionbattery-stateofcharge": (6, 0.6),
        "charge-ischarging": (5, 0.5),
        "internalcombustionengine-fuellevel": (6, 0.6),
        "lock": (10, 1.0),
    }
    lacking = result.connections
    assert (lacking.active, lacking.lacking_required, lacking.lacking_optional_only) == (11, 2, 9)
    assert lacking.lacking == {
        "control_security": 2,
        "read_battery": 1,
        "read_charge": 4,
        "read_fuel": 11,
        "read_odometer": 1,
    }
    bev_or_unknown = ConnectionFilters(powertrains=frozenset({FilterPowertrain.BEV}), allow_unknown=True)
    other = await what_if(registry, NEXT, app_id=APP, filters=bev_or_unknown)
    assert other.connectable == 5
    assert {t.target: t.capable for t in other.targets}["tractionbattery-stateofcharge"] == 4


async def test_the_commands_print_the_same_figures(
    deployment: Deployment, registry: Registry, keys: Keys, world: Settings, tmp_path: Path
) -> None:
    """`fleetgate access advise --json` and `whatif --json` print the API's shapes; without --json, tables that
    name the verdicts and the shares."""
    cli = cli_for(deployment.url, keys, cluster=deployment.cluster)
    config_file = tmp_path / "next.toml"
    config_file.write_text(NEXT_TOML)

    async def run(*args: str) -> Any:
        result = await asyncio.to_thread(cli, "access", *args)
        assert result.exit_code == 0, result.stderr
        return result.stdout

    advice = json.loads(await run("advise", "--app", APP, "--since", "1h", "--json"))
    expected = (await advise(registry, world, APP, timedelta(hours=1))).to_json()
    assert (advice["permissions"], advice["not_capable"]) == (expected["permissions"], expected["not_capable"])
    assert (advice["unused"], advice["unchecked"], advice["unrequested"]) == (
        ["read_vin"],
        ["control_security", "read_charge"],
        ["read_tires"],
    )
    assert advice["window"]["since"] == "1h"
    whatif = json.loads(await run("whatif", str(config_file), "--app", APP, "--json"))
    assert whatif == (await what_if(registry, NEXT, app_id=APP)).to_json()
    assert whatif["config"]["scope"] == (
        "control_security required:read_battery read_charge read_fuel required:read_odometer"
    )
    table = await run("advise", "--app", APP, "--since", "1h")
    assert all(word in table for word in ("unused", "unchecked", "stale_grants", "unrequested", "Toyota"))
    table = await run("whatif", str(config_file), "--app", APP, "--allow", "BEV")
    assert "4 of 11 registered vehicles could connect (filters: BEV, not UNKNOWN)" in table
