"""Vehicle states in Redis: loaded for vehicles of every shard in one call (on a Redis Cluster too), first states
drawn for those never stored, and a held state kept only while the stored version is still its own."""

from __future__ import annotations

from devtools.builders import make_vehicle
from simulator.vehicles import advance
from simulator.vehicles.store import Stored, load_states, save_state
from tests.deployment import Deployment
from tests.vehicle_helpers import NOW

FLEET = [make_vehicle(vehicle_id=f"store-{n}") for n in range(12)]


async def test_states_load_across_shards_and_held_ones_are_kept_while_current(deployment: Deployment) -> None:
    client, keys = deployment.client, deployment.keys
    if deployment.cluster:
        assert len({keys.shard_of_vehicle(v.id).index for v in FLEET}) > 1  # the call spans shards
    first = await load_states(client, keys, FLEET, 0, NOW)
    assert {v.id for v in FLEET} == first.keys()
    assert {stored.version for stored in first.values()} == {0}
    for vehicle in FLEET[:6]:
        assert await save_state(client, keys, vehicle.id, first[vehicle.id], first[vehicle.id].state)

    loaded = await load_states(client, keys, FLEET, 0, NOW)
    assert [loaded[v.id].version for v in FLEET] == [1] * 6 + [0] * 6
    assert all(loaded[v.id].state == first[v.id].state for v in FLEET)

    # Held states: kept as they are where the version is the stored one, read again where it is not.
    held = {v.id: Stored(advance(loaded[v.id].state, v, NOW + 60, 0), 1) for v in FLEET[:4]}
    held[FLEET[4].id] = Stored(held[FLEET[0].id].state, 7)  # another process wrote since
    again = await load_states(client, keys, FLEET, 0, NOW, held=held)
    assert all(again[v.id] is held[v.id] for v in FLEET[:4])
    assert again[FLEET[4].id] == loaded[FLEET[4].id]
    assert [again[v.id].version for v in FLEET] == [1] * 6 + [0] * 6
