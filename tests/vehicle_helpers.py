"""Builders for the simulated-vehicle tests: vehicles of each powertrain with every capability they can have."""

from __future__ import annotations

from typing import Any

from schemas.catalog import get_catalog
from schemas.powertrain import Powertrain
from schemas.vehicle import Vehicle, placeholder_vin
from simulator.vehicles import SignalReading, VehicleProblem, VehicleState, read_signal, set_value
from simulator.vehicles.plan import day_start, local_day
from simulator.vehicles.profile import profile_for

NOW = 1_750_000_000.0
"""2025-06-15 15:06:40 UTC."""
SEED = 11
MODELS = {
    Powertrain.BEV: ("Tesla", "Model 3"),
    Powertrain.PHEV: ("Toyota", "RAV4 Prime"),
    Powertrain.ICE: ("Ford", "F-150"),
    Powertrain.HEV: ("Toyota", "Prius"),
    Powertrain.UNKNOWN: ("Chevrolet", "Volt"),
}


def full_vehicle(powertrain: Powertrain, vehicle_id: str | None = None, year: int = 2022) -> Vehicle:
    """A vehicle with every signal and command its powertrain can physically have (UNKNOWN: all of them)."""
    make, model = MODELS[powertrain]
    vehicle_id = vehicle_id or f"veh-{powertrain.value.lower()}"
    return Vehicle(
        id=vehicle_id,
        vin=placeholder_vin(vehicle_id),
        make=make,
        model=model,
        year=year,
        powertrain=powertrain,
        capabilities=get_catalog().physically_possible(powertrain),
    )


def night(vehicle: Vehicle) -> float:
    """00:01 local time the night after NOW: hours before the vehicle's first departure (06:45 at the earliest)."""
    profile = profile_for(vehicle, SEED)
    return day_start(profile, local_day(profile, NOW) + 1) + 60


def woken(state: VehicleState, vehicle: Vehicle, t: float) -> VehicleState:
    """The state at t with the vehicle awake (as a command would leave it)."""
    return set_value(state, vehicle, "connectivitystatus-isasleep", False, t)


def read(state: VehicleState, vehicle: Vehicle, code: str, t: float) -> dict[str, Any]:
    """The body a successful read returns (fails the test on a refusal)."""
    result = read_signal(state, vehicle, code, t)
    assert isinstance(result, SignalReading), result
    return result.body


def value(state: VehicleState, vehicle: Vehicle, code: str, t: float) -> Any:
    return read(state, vehicle, code, t)["value"]


def refusal(result: object) -> str:
    """The code of a VehicleProblem (fails the test on anything else)."""
    return problem(result).code


def problem(result: object) -> VehicleProblem:
    assert isinstance(result, VehicleProblem), result
    return result


def stale(result: object) -> SignalReading:
    """The last value a refused read carries (fails the test if it carries none)."""
    reading = problem(result).stale
    assert reading is not None, result
    return reading
