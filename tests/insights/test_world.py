"""Advice and what-if against a world whose answer is known: a small fleet of known makes, powertrains and
capabilities; an app whose config has required and optional permissions; connections with designed grants (owners
unchecked some optional ones, one was made with a scope override, one revoked); a designed load decided by the
real gatekeeper while the usage consumer counts. Every figure is asserted exactly, from the Python API and from
the command line, on the session's redis-server and on the local Redis Cluster with six shards (conftest.py)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from devtools.builders import request_json
from schemas.access import VehicleAccessConfig
from schemas.grant import ConnectionFilters, FilterPowertrain
from schemas.powertrain import Powertrain
from schemas.vehicle import Vehicle, placeholder_vin
from services.gatekeeper.worker import Gatekeeper
from services.insights.advice import Advice, advise
from services.insights.usage import UsageConsumer
from services.insights.whatif import what_if
from services.keyspace import Keys
from services.redis_client import Client
from services.registry import AppStore, ConnectService, Registry
from services.settings import Settings
from tests.deployment import Deployment
from tests.test_tail import cli_for

APP = "fleet-app"
# (id, make, powertrain, lacks): 4 Tesla BEVs, 3 Ford ICEs and a Ford HEV, 2 Toyota PHEVs, an Acme of UNKNOWN
# powertrain (the app's filters keep it out).
FLEET = [
    ("t0", "Tesla", Powertrain.BEV, ()),
    ("t1", "Tesla", Powertrain.BEV, ()),
    ("t2", "Tesla", Powertrain.BEV, ()),
    ("t3", "Tesla", Powertrain.BEV, ("vehicleidentification-vin",)),
    ("f0", "Ford", Powertrain.ICE, ()),
    ("f1", "Ford", Powertrain.ICE, ()),
    ("f2", "Ford", Powertrain.ICE, ()),
    ("f3", "Ford", Powertrain.HEV, ()),
    ("y0", "Toyota", Powertrain.PHEV, ()),
    ("y1", "Toyota", Powertrain.PHEV, ("charge-ischarging",)),
    ("u0", "Acme", Powertrain.UNKNOWN, ()),
]
PUBLISHED = VehicleAccessConfig.select(
    signals=[
        "odometer-traveleddistance",
        "tractionbattery-stateofcharge",
        "charge-ischarging",
        "vehicleidentification-vin",
    ],
    commands=["lock"],
    required=["odometer-traveleddistance"],
)
# Connection name -> (vehicle, what its owner unchecked): read_odometer is required, so never unchecked.
GRANTS = {
    "t0": ("t0", ()),
    "t1": ("t1", ("read_charge",)),
    "t2": ("t2", ()),
    "t3": ("t3", ("read_vin",)),
    "f0": ("f0", ()),
    "f1": ("f1", ("control_security",)),
    "f2": ("f2", ()),
    "f3": ("f3", ("read_charge", "read_battery")),
    "y0": ("y0", ()),
    "y1": ("y1", ("read_charge",)),
}
# (connection name, kind, target, times): what the app asks, and (in comments) what the gatekeeper answers.
LOAD = [
    ("t0", "signal", "odometer-traveleddistance", 3),  # ALLOWED read_odometer
    ("f0", "signal", "odometer-traveleddistance", 2),  # ALLOWED read_odometer
    ("t0", "signal", "tractionbattery-stateofcharge", 2),  # ALLOWED read_battery
    ("y0", "signal", "tractionbattery-stateofcharge", 1),  # ALLOWED read_battery
    ("t2", "command", "lock", 1),  # ALLOWED control_security
    ("t0", "signal", "charge-ischarging", 1),  # ALLOWED read_charge
    ("t1", "signal", "charge-ischarging", 2),  # PERMISSION_DENIED: its owner unchecked read_charge
    ("f1", "command", "lock", 1),  # PERMISSION_DENIED: its owner unchecked control_security
    ("t0", "signal", "wheel-tires", 1),  # PERMISSION_DENIED: read_tires, outside the config
    ("y0-scoped", "signal", "odometer-traveleddistance", 1),  # PERMISSION_DENIED: the scope lacked read_odometer
    ("f0", "signal", "tractionbattery-stateofcharge", 2),  # VEHICLE_NOT_CAPABLE: an ICE
    ("y1", "signal", "charge-ischarging", 1),  # VEHICLE_NOT_CAPABLE: this PHEV lacks it
    ("t3", "signal", "vehicleidentification-vin", 1),  # VEHICLE_NOT_CAPABLE: this BEV lacks it
    ("revoked", "signal", "odometer-traveleddistance", 1),  # UNAUTHORIZED
    ("t0", "signal", "odometer-nope", 1),  # REJECTED: no such signal
    ("default", "signal", "odometer-traveleddistance", 1),  # ALLOWED, for the default app
    ("unknown", "signal", "odometer-traveleddistance", 1),  # UNAUTHORIZED, of no app
]
DECISIONS = sum(times for *_, times in LOAD)
NEXT = VehicleAccessConfig.select(
    signals=[
        "odometer-traveleddistance",
        "tractionbattery-stateofcharge",
        "charge-ischarging",
        "internalcombustionengine-fuellevel",
    ],
    commands=["lock"],
    required=["odometer-traveleddistance", "tractionbattery-stateofcharge"],
)
NEXT_TOML = """
[[signals]]
code = "odometer-traveleddistance"
required = true
[[signals]]
code = "tractionbattery-stateofcharge"
required = true
[[signals]]
code = "charge-ischarging"
[[signals]]
code = "internalcombustionengine-fuellevel"
[[commands]]
name = "lock"
"""

Runner = Callable[[], AbstractAsyncContextManager[Gatekeeper]]


async def build(registry: Registry) -> dict[str, tuple[str, str]]:
    """The fleet, the app with its config and filters, and the connections: name -> (connection id, vehicle)."""
    await AppStore(registry.redis, registry.keys).create("Fleet app", ["http://localhost:8080/cb"], app_id=APP)
    await registry.add_vehicles(
        Vehicle.with_defaults(
            id=v, vin=placeholder_vin(v), make=make, model="M", year=2022, powertrain=powertrain, lacks=lacks
        )
        for v, make, powertrain, lacks in FLEET
    )
    await registry.publish_config(PUBLISHED, app_id=APP)
    admitted = frozenset({FilterPowertrain.ICE, FilterPowertrain.BEV, FilterPowertrain.PHEV})
    await registry.set_filters(ConnectionFilters(powertrains=admitted, allow_unknown=False), app_id=APP)
    await registry.publish_config(VehicleAccessConfig.select(signals=["odometer-traveleddistance"]))
    connect = ConnectService(registry)
    made = {}
    for name, (vehicle, unchecked) in GRANTS.items():
        made[name] = ((await connect.authorize(vehicle, unchecked=unchecked, app_id=APP)).id, vehicle)
    made["y0-scoped"] = ((await connect.authorize("y0", scope="read_battery", app_id=APP)).id, "y0")
    revoked = await connect.authorize("t2", app_id=APP)
    await connect.revoke(revoked.id)
    made["revoked"] = (revoked.id, "t2")
    made["default"] = ((await connect.authorize("t0")).id, "t0")
    made["unknown"] = ("c-unknown", "t0")
    return made


@pytest.fixture
async def world(
    registry: Registry, redis: Client, keys: Keys, gatekeeper_settings: Settings, running_later: Runner
) -> Settings:
    """The world built, its load decided by a gatekeeper and counted by a usage consumer running meanwhile."""
    connections = await build(registry)
    usage = UsageConsumer(gatekeeper_settings, redis)
    counting = asyncio.create_task(usage.run())
    async with running_later():
        n = 0
        for name, kind, target, times in LOAD:
            connection_id, vehicle = connections[name]
            for _ in range(times):
                data = request_json(f"r{n}", connection_id=connection_id, vehicle_id=vehicle, kind=kind, target=target)
                await redis.xadd(keys.shard_of_vehicle(vehicle).requests, {"data": data})
                n += 1
        async with asyncio.timeout(20):
            while usage.stats.read < DECISIONS:
                await asyncio.sleep(0.05)
    usage.stop()
    await counting
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
