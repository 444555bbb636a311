"""What a scenario makes happen to a vehicle (scenario.py), as pure state changes at a given simulated time.

Each takes the vehicle's state and `now` and returns the state advanced to `now` with the happening applied, or raises
ValueError (one line) when the state model does not allow it: a driving vehicle cannot be plugged in, nor fall asleep,
nor set off again; a vehicle out of energy stays where it is. Going offline or to sleep for a while is two happenings:
the start, and at its end the way back (back in coverage; woken, as by a command).
"""

from __future__ import annotations

from schemas.vehicle import Vehicle
from simulator.vehicles.charging import unplug
from simulator.vehicles.life import MIN_TRIP_KM, advance, start_trip
from simulator.vehicles.overrides import set_by
from simulator.vehicles.physics import settle, soc_at
from simulator.vehicles.plan import ROAD_FACTOR
from simulator.vehicles.profile import distance_km, profile_for
from simulator.vehicles.state import VehicleState

CITY_KPH, ROAD_KPH = 38, 65
"""Average speeds of a scripted trip: shorter than LONG_TRIP_KM by road, and longer."""
LONG_TRIP_KM = 15
MIN_BEV_SOC = 300
"""A BEV below this state of charge (hundredths of a percent) does not set off, as in its daily life."""


def plug(state: VehicleState, vehicle: Vehicle, plugged: bool, now: float) -> VehicleState:
    """Plugged in (and charging to its limit) or unplugged."""
    if not profile_for(vehicle, state.seed).has_battery:
        raise ValueError(f"vehicle {vehicle.id} has no traction battery to plug in")
    return set_by(state, vehicle, "cable", plugged, now)


def go_offline(state: VehicleState, vehicle: Vehicle, offline: bool, now: float) -> VehicleState:
    """Out of mobile coverage (reads and commands answer UNREACHABLE), or back in it."""
    return set_by(state, vehicle, "online", not offline, now)


def fall_asleep(state: VehicleState, vehicle: Vehicle, asleep: bool, now: float) -> VehicleState:
    """Asleep now (reads answer its last values; a command wakes it), or woken."""
    return set_by(state, vehicle, "asleep", asleep, now)


def drive_to(state: VehicleState, vehicle: Vehicle, latitude: float, longitude: float, now: float) -> VehicleState:
    """Setting off now from where it is parked to (latitude, longitude): unplugged first if plugged in."""
    state = advance(state, vehicle, max(now, state.at), state.seed)
    t, profile = state.at, profile_for(vehicle, state.seed)
    if state.trip is not None:
        raise ValueError(f"vehicle {vehicle.id} is driving already")
    target = (round(latitude * 1e6), round(longitude * 1e6))
    road_km = distance_km((state.lat, state.lon), target) * ROAD_FACTOR
    if road_km < MIN_TRIP_KM * ROAD_FACTOR:
        raise ValueError(f"vehicle {vehicle.id} is there already")
    electric_only = profile.has_battery and not profile.has_tank
    if (electric_only and soc_at(state, profile, t) < MIN_BEV_SOC) or (not profile.has_battery and state.fuel < 100):
        raise ValueError(f"vehicle {vehicle.id} is out of energy")
    state = settle(state, profile, t)
    if state.plugged:
        state = unplug(state, t)
    return start_trip(state, profile, target, t, CITY_KPH if road_km < LONG_TRIP_KM else ROAD_KPH)
