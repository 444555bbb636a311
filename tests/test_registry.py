"""The registry on a real redis-server: vehicles, config versions, filters, lookups and the record layout."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from devtools.builders import make_connection, make_vehicle
from schemas.access import VehicleAccessConfig
from schemas.grant import ConnectionFilters, FilterPowertrain
from schemas.powertrain import Powertrain
from services.errors import NotFoundError, ServiceError
from services.keyspace import Keys
from services.registry import Registry
from services.registry.records import decode_connection, decode_vehicle, encode_connection, encode_vehicle


def test_connection_record_round_trips_and_is_compact() -> None:
    """A connection survives encode/decode and its record is a few dozen bytes."""
    connection = make_connection("read_battery", "read_odometer", "control_security")
    record = encode_connection(connection)
    assert decode_connection(connection.id, record) == connection
    assert len(record) < 64


def test_vehicle_record_stores_only_differences_from_defaults() -> None:
    """A vehicle round-trips; its record lists what it adds to or lacks from its powertrain's defaults."""
    vehicle = make_vehicle(Powertrain.BEV, lacks=["wheel-tires"])
    record = encode_vehicle(vehicle)
    assert decode_vehicle(vehicle.id, record) == vehicle
    assert b'"lacks":["wheel-tires"]' in record
    assert b'"adds":[]' in record


async def test_vehicles_add_get_list(registry: Registry) -> None:
    """Vehicles are stored, read back, listed; adding an existing id is refused unless replacing."""
    await registry.add_vehicle(make_vehicle(vehicle_id="veh-b"))
    await registry.add_vehicles([make_vehicle(Powertrain.ICE, vehicle_id=f"veh-{i}") for i in range(3)])
    assert (await registry.vehicle("veh-b")).powertrain is Powertrain.BEV
    assert await registry.vehicle_ids() == ["veh-0", "veh-1", "veh-2", "veh-b"]
    with pytest.raises(ServiceError, match="already exists"):
        await registry.add_vehicle(make_vehicle(Powertrain.ICE, vehicle_id="veh-b"))
    await registry.add_vehicle(make_vehicle(Powertrain.ICE, vehicle_id="veh-b"), replace=True)
    assert (await registry.vehicle("veh-b")).powertrain is Powertrain.ICE


async def test_unknown_vehicle_is_not_found(registry: Registry) -> None:
    """Reading a vehicle that is not registered raises NotFoundError naming it."""
    with pytest.raises(NotFoundError, match="'veh-nope'"):
        await registry.vehicle("veh-nope")


async def test_config_versions(registry: Registry) -> None:
    """Each publish is a new current version; old versions stay readable."""
    with pytest.raises(NotFoundError, match="no Vehicle Access config"):
        await registry.config()
    first = await registry.publish_config(VehicleAccessConfig.select(signals=["odometer-traveleddistance"]))
    second = await registry.publish_config(VehicleAccessConfig.select(commands=["lock"], required=["lock"]))
    assert (first.version, second.version) == (1, 2)
    assert await registry.config() == second
    assert await registry.config(1) == first
    with pytest.raises(NotFoundError, match="version 9"):
        await registry.config(9)


async def test_filters_default_to_none_and_round_trip(registry: Registry) -> None:
    """Without filters every powertrain connects; set filters read back as set."""
    assert await registry.filters() == ConnectionFilters()
    filters = ConnectionFilters(powertrains=frozenset({FilterPowertrain.BEV}), allow_unknown=False)
    await registry.set_filters(filters)
    assert await registry.filters() == filters


async def test_lookup_is_one_round_trip_with_none_for_missing(registry: Registry, redis: Redis, keys: Keys) -> None:
    """lookup() returns the connection and vehicle, None where missing, with a single MGET."""
    vehicle = make_vehicle()
    connection = make_connection("read_battery")
    await registry.add_vehicle(vehicle)
    await redis.set(keys.connection(connection.id), encode_connection(connection))
    before = await _commands_processed(redis)
    assert await registry.lookup(connection.id, vehicle.id) == (connection, vehicle)
    assert await _commands_processed(redis) - before == 2  # the MGET, and the INFO that measures it
    assert await registry.lookup("conn-missing", "veh-missing") == (None, None)


async def _commands_processed(redis: Redis) -> int:
    return int((await redis.info("stats"))["total_commands_processed"])
