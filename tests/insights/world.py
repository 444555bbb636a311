"""A world whose advice and what-if are known (test_world.py asserts them from the Python API and the command
line, the dashboard's tests from its pages): a small fleet of known makes, powertrains and capabilities; an app
whose config has required and optional permissions; connections with designed grants (owners unchecked some
optional ones, one was made with a scope override, one revoked); a designed load decided by the real gatekeeper
while the usage consumer counts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from devtools.builders import request_json
from schemas.access import VehicleAccessConfig
from schemas.grant import ConnectionFilters, FilterPowertrain
from schemas.powertrain import Powertrain
from schemas.vehicle import Vehicle, placeholder_vin
from services.gatekeeper.worker import Gatekeeper
from services.insights.usage import UsageConsumer
from services.keyspace import Keys
from services.redis_client import Client
from services.registry import AppStore, ConnectService, CreatedApp, Registry
from services.settings import Settings

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


@dataclass(frozen=True, slots=True)
class Built:
    created: CreatedApp = field(repr=False)  # its management token signs the dashboard in; never in a report
    connections: dict[str, tuple[str, str]]
    """Connection name (GRANTS' and LOAD's) -> (connection id, vehicle)."""


async def build(registry: Registry) -> Built:
    """The fleet, the app with its config and filters, and the connections."""
    created = await AppStore(registry.redis, registry.keys).create(
        "Fleet app", ["http://localhost:8080/cb"], app_id=APP
    )
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
    return Built(created, made)


async def decide_load(
    redis: Client, keys: Keys, settings: Settings, running_later: Runner, connections: dict[str, tuple[str, str]]
) -> None:
    """LOAD decided by a gatekeeper and counted by a usage consumer running meanwhile; back once all is counted."""
    usage = UsageConsumer(settings, redis)
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
