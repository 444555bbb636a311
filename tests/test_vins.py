"""The VIN index (services/registry/vins.py) on a real redis-server: written with the vehicles, pruned when they
change VIN or go, never answering a VIN its vehicle does not carry, and built once for data written without it."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from redis.asyncio import Redis

from devtools.builders import make_vehicle
from schemas.vehicle import Vehicle, placeholder_vin
from services.errors import ServiceError
from services.keyspace import Keys
from services.registry import Registry
from services.registry import vins as vins_module
from services.registry.records import encode_vehicle
from services.registry.vins import COMPLETE
from simulator.cleanup import remove_run
from tests.deployment import Deployment


def _vehicle(vehicle_id: str, vin: str | None = None) -> Vehicle:
    return replace(make_vehicle(vehicle_id=vehicle_id), vin=vin or placeholder_vin(vehicle_id))


async def _entries(registry: Registry) -> dict[str, str]:
    """The index's VIN entries (without the completeness marker)."""
    found = await registry.redis.hgetall(registry.keys.vins)
    return {_text(k): _text(v) for k, v in found.items() if _text(k) != COMPLETE}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def test_add_vehicle_and_add_vehicles_write_the_index(registry: Registry) -> None:
    """Each added vehicle's VIN leads to it; an unknown VIN is None, in one HMGET once the index is complete."""
    one, *many = [_vehicle(f"veh-{i}") for i in range(4)]
    await registry.add_vehicle(one)
    await registry.add_vehicles(many)
    assert await _entries(registry) == {v.vin: v.id for v in (one, *many)}
    for vehicle in (one, *many):
        assert await registry.vehicle_by_vin(vehicle.vin) == vehicle
    assert await registry.vehicle_by_vin(placeholder_vin("nobody")) is None


async def test_a_refused_add_leaves_the_index_alone(registry: Registry) -> None:
    """Adding an existing id without replace is refused, and the VIN it named keeps leading to its vehicle."""
    first, second = _vehicle("veh-a"), _vehicle("veh-b")
    await registry.add_vehicles([first, second])
    with pytest.raises(ServiceError, match="already exists"):
        await registry.add_vehicle(_vehicle("veh-a", second.vin))
    assert await registry.vehicle_by_vin(second.vin) == second
    assert await registry.vehicle_by_vin(first.vin) == first


@pytest.mark.parametrize("bulk", [False, True])
async def test_a_new_vin_replaces_the_old_one(registry: Registry, *, bulk: bool) -> None:
    """Replaced with another VIN (add_vehicle(replace=True) or add_vehicles), a vehicle is found by the new VIN, not
    the old: its old entry is dropped, unless another vehicle has taken that VIN, whose entry stays."""
    old_vin, new_vin = placeholder_vin("old"), placeholder_vin("new")
    await registry.add_vehicles([_vehicle("veh-1", old_vin), _vehicle("veh-2", placeholder_vin("two"))])
    changed = _vehicle("veh-1", new_vin)
    if bulk:
        await registry.add_vehicles([changed])
    else:
        await registry.add_vehicle(changed, replace=True)
    assert await registry.vehicle_by_vin(new_vin) == changed
    assert await registry.vehicle_by_vin(old_vin) is None
    assert old_vin not in await _entries(registry)
    await registry.add_vehicles([_vehicle("veh-2", new_vin), _vehicle("veh-1", old_vin)])  # they swap VINs
    assert (await _entries(registry))[new_vin] == "veh-2"
    assert await registry.vehicle_by_vin(old_vin) == _vehicle("veh-1", old_vin)


async def test_a_stale_entry_answers_nothing(registry: Registry) -> None:
    """An entry naming a vehicle that does not carry the VIN, or no vehicle at all, finds no vehicle."""
    await registry.add_vehicle(_vehicle("veh-1"))
    await registry.redis.hset(registry.keys.vins, mapping={placeholder_vin("x"): "veh-1", placeholder_vin("y"): "gone"})
    assert await registry.vehicle_by_vin(placeholder_vin("x")) is None
    assert await registry.vehicle_by_vin(placeholder_vin("y")) is None


async def test_removed_vehicles_leave_the_index(registry: Registry) -> None:
    """remove_vehicles deletes the vehicles and their entries only: a VIN another vehicle holds stays its."""
    kept, gone, shared = _vehicle("veh-kept"), _vehicle("veh-gone"), _vehicle("veh-shared")
    await registry.add_vehicles([kept, gone, shared, _vehicle("veh-owner", shared.vin)])  # the VIN now veh-owner's
    assert await registry.remove_vehicles(["veh-gone", "veh-shared", "veh-never"]) == 2
    assert await _entries(registry) == {kept.vin: kept.id, shared.vin: "veh-owner"}
    assert await registry.vehicle_by_vin(gone.vin) is None
    assert await registry.vehicle_ids() == ["veh-kept", "veh-owner"]


async def test_cleanup_removes_a_runs_entries(registry: Registry) -> None:
    """A load test's cleanup (remove_run) deletes its vehicles' VIN entries and no one else's."""
    mine, run = _vehicle("veh-mine"), [_vehicle(f"lt-{i}") for i in range(3)]
    await registry.add_vehicles([mine, *run])
    removed = await remove_run(registry, "a-run", [v.id for v in run])
    assert removed.vehicles == len(run)
    assert await _entries(registry) == {mine.vin: mine.id}
    assert await registry.vehicle_by_vin(run[0].vin) is None


async def test_data_without_an_index_is_indexed_once(
    registry: Registry, redis: Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Vehicles stored before the index existed are found: the first lookups (concurrent here) build the index once,
    in chunks, and mark it complete; later lookups read it as it is."""
    monkeypatch.setattr(vins_module, "CHUNK", 2)
    fleet = [_vehicle(f"veh-{i}") for i in range(5)]
    for vehicle in fleet:  # as an earlier fleetgate wrote them
        await redis.set(keys.vehicle(vehicle.id), encode_vehicle(vehicle))
    assert not await redis.exists(keys.vins)
    found = await asyncio.gather(*(registry.vehicle_by_vin(v.vin) for v in fleet))
    assert found == fleet
    assert await _entries(registry) == {v.vin: v.id for v in fleet}
    assert await redis.hexists(keys.vins, COMPLETE)
    assert await registry.vins.build() == 0  # complete: nothing to do
    await redis.set(keys.vehicle("veh-late"), encode_vehicle(_vehicle("veh-late")))  # not through the registry
    assert await registry.vehicle_by_vin(placeholder_vin("veh-late")) is None


async def test_a_new_registry_builds_its_empty_index_once(registry: Registry, redis: Redis, keys: Keys) -> None:
    """No vehicles at all: the first lookup marks the (empty) index complete, so later ones never scan."""
    assert await registry.vehicle_by_vin(placeholder_vin("x")) is None
    assert await redis.hgetall(keys.vins) == {COMPLETE.encode(): b"1"}
    await registry.add_vehicle(_vehicle("veh-1"))
    assert await registry.vehicle_by_vin(placeholder_vin("veh-1")) == _vehicle("veh-1")


async def test_the_index_on_every_deployment(deployment: Deployment) -> None:
    """Writes, a VIN change, lookups, a build and removals on one Redis and on the cluster (vehicle keys and the
    index on different slots: pipelines and the pruning script stay within one slot per command)."""
    registry = Registry(deployment.client, deployment.keys)
    fleet = [_vehicle(f"veh-{i}") for i in range(6)]
    await registry.add_vehicles(fleet)
    await registry.add_vehicle(_vehicle("veh-0", placeholder_vin("new")), replace=True)
    assert await registry.vins.build() == len(fleet)
    assert await registry.vehicle_by_vin(placeholder_vin("new")) == _vehicle("veh-0", placeholder_vin("new"))
    assert await registry.vehicle_by_vin(fleet[0].vin) is None
    assert await registry.vehicle_by_vin(fleet[1].vin) == fleet[1]
    assert await registry.remove_vehicles([v.id for v in fleet]) == len(fleet)
    assert await _entries(registry) == {}
