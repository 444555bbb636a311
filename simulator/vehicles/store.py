"""Simulated vehicles' state in Redis: one hash per vehicle (`s` the encoded state, `f` its injected faults, `n`
their version: a write of either checks and bumps it), under its shard's hash tag, and the shared simulated clock.

Every process that touches vehicle state (the vehicles services, `fleetgate vehicles state|set`) reads the clock
from Redis, so they all agree on simulated time; the first vehicles service to start records it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

from schemas.vehicle import Vehicle
from services.gatekeeper.resp import RespScript, transport_for
from services.keyspace import Keys
from services.redis_client import Client
from services.settings import Settings
from simulator.errors import SimulatorError
from simulator.vehicles import SimClock, VehicleState, initial_state
from simulator.vehicles.faults import FaultSet

log = logging.getLogger("fleetgate.vehicles")

# KEYS: the state hash. ARGV: the version read, the new state ('' to keep it), the new faults ('' to keep them).
# Returns 1 if written, 0 if the version changed.
_COMPARE_AND_SET = """
if (redis.call('HGET', KEYS[1], 'n') or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'n', tonumber(ARGV[1]) + 1)
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 's', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'f', ARGV[3]) end
return 1
"""


# KEYS: vehicle state hashes of one shard. Returns each one's version, encoded state and faults (nil: not stored).
_LOAD = """
local states = {}
for i, key in ipairs(KEYS) do
  states[i] = redis.call('HMGET', key, 'n', 's', 'f')
end
return states
"""


class StateConflictError(SimulatorError):
    """A vehicle's state or faults changed under every one of a few tries to write them."""


@dataclass(frozen=True, slots=True)
class Stored:
    """A vehicle's state as read, with the version a write must match (0: never written)."""

    state: VehicleState
    version: int
    faults: FaultSet = field(default_factory=FaultSet)


async def clock(redis: Client, keys: Keys, speed: float, epoch_sim: float | None = None) -> SimClock:
    """The deployment's simulated clock: the one recorded in Redis, or a new one starting now at `speed`, its
    simulated time starting at `epoch_sim` (default: the real time now)."""
    now = time.time()
    fresh = json.dumps({"speed": speed, "epoch_real": now, "epoch_sim": now if epoch_sim is None else epoch_sim})
    await redis.set(keys.vehicles_clock, fresh, nx=True)
    return _clock(json.loads(await redis.get(keys.vehicles_clock) or fresh))


async def settings_clock(redis: Client, keys: Keys, settings: Settings) -> SimClock:
    """`clock()` at the settings' speed, its simulated time starting at FLEETGATE_SIM_START (default: now)."""
    start = None if settings.sim_start is None else settings.sim_start.timestamp()
    return await clock(redis, keys, settings.sim_speed, start)


def _clock(recorded: dict[str, float]) -> SimClock:
    return SimClock(speed=float(recorded["speed"]), epoch_real=recorded["epoch_real"], epoch_sim=recorded["epoch_sim"])


async def recorded_clock(redis: Client, keys: Keys) -> SimClock | None:
    """The deployment's simulated clock if one was recorded (without recording one)."""
    recorded = await redis.get(keys.vehicles_clock)
    return None if recorded is None else _clock(json.loads(recorded))


async def load_states(
    redis: Client, keys: Keys, vehicles: Sequence[Vehicle], seed: int, now: float, *, held: Mapping[str, Stored] = {}
) -> dict[str, Stored]:
    """Each vehicle's stored state and faults, or its first state if it has none yet (the version counts fault
    writes too); one round trip per shard.

    A state in `held` (the service's latest, advanced from the stored one) is taken as it is while the stored
    version is still its version: not decoded again (a decode cost as much as a third of answering).
    """
    by_shard: dict[int, list[Vehicle]] = {}
    for vehicle in vehicles:
        by_shard.setdefault(keys.shard_of_vehicle(vehicle.id).index, []).append(vehicle)
    found = {}
    for index, group in by_shard.items():
        shard = keys.shard(index)
        # One script on the hot path's transport: a redis-py pipeline of HMGETs cost 10 us a vehicle to pack
        # and parse, a third of the service's CPU once answering got cheaper.
        script = RespScript(transport_for(redis, shard.decisions), _LOAD)
        replies = await script([shard.vehicle_state_prefix + vehicle.id for vehicle in group], [])
        for vehicle, (version, encoded, faults) in zip(group, replies, strict=True):
            kept = held.get(vehicle.id)
            if kept is not None and encoded is not None and kept.version == int(version or 0):
                found[vehicle.id] = kept
                continue
            state = initial_state(vehicle, seed, now) if encoded is None else VehicleState.decode(encoded)
            found[vehicle.id] = Stored(state, int(version or 0), _faults(vehicle.id, faults))
    return found


async def load_faults(redis: Client, keys: Keys, vehicle_id: str) -> tuple[FaultSet, int]:
    """The vehicle's faults and the version a write must match."""
    version, faults = await redis.hmget(_key(keys, vehicle_id), ["n", "f"])
    return _faults(vehicle_id, cast(bytes | None, faults)), int(version or 0)


async def save_state(redis: Client, keys: Keys, vehicle_id: str, stored: Stored, new: VehicleState) -> bool:
    """Write `new` if the vehicle is still at `stored.version`; False if another process changed it meanwhile."""
    return await compare_and_set(redis, keys, vehicle_id, stored.version, state=new)


async def compare_and_set(
    redis: Client,
    keys: Keys,
    vehicle_id: str,
    version: int,
    *,
    state: VehicleState | None = None,
    faults: FaultSet | None = None,
) -> bool:
    """Write `state` and `faults` (None: keep) if the vehicle is still at `version`; False if another process changed
    its state or faults meanwhile."""
    encoded_state = b"" if state is None else state.encode()
    encoded_faults = b"" if faults is None else faults.encode()
    written = await redis.eval(_COMPARE_AND_SET, 1, _key(keys, vehicle_id), version, encoded_state, encoded_faults)
    return bool(written)


async def update_state(
    redis: Client,
    keys: Keys,
    vehicle: Vehicle,
    *,
    seed: int,
    now: float,
    change: Callable[[VehicleState], VehicleState],
    tries: int = 5,
) -> VehicleState:
    """Apply `change` to the vehicle's state at `now` and write the result under the version check, reading again
    when another process wrote meanwhile. `change` raises ValueError to write nothing."""
    for _ in range(tries):
        stored = (await load_states(redis, keys, [vehicle], seed, now))[vehicle.id]
        changed = change(stored.state)
        if await compare_and_set(redis, keys, vehicle.id, stored.version, state=changed):
            return changed
    raise StateConflictError(f"vehicle {vehicle.id}'s state kept changing; try again")


async def update_faults(
    redis: Client, keys: Keys, vehicle_id: str, change: Callable[[FaultSet], FaultSet], tries: int = 5
) -> tuple[FaultSet, FaultSet]:
    """Apply `change` to the vehicle's faults and write the result under the version check, reading again when
    another process wrote meanwhile: (before, after). `change` raises ValueError to write nothing."""
    for _ in range(tries):
        before, version = await load_faults(redis, keys, vehicle_id)
        after = change(before)
        if await compare_and_set(redis, keys, vehicle_id, version, faults=after):
            return before, after
    raise StateConflictError(f"vehicle {vehicle_id}'s state kept changing; try again")


def _faults(vehicle_id: str, encoded: bytes | None) -> FaultSet:
    try:
        return FaultSet.decode(encoded)
    except ValueError as exc:  # only a hand-edited hash gets here: answer as if it had no faults, and say so
        log.warning("vehicle %s: faults ignored: %s", vehicle_id, exc)
        return FaultSet()


def _key(keys: Keys, vehicle_id: str) -> str:
    return keys.shard_of_vehicle(vehicle_id).vehicle_state_prefix + vehicle_id
