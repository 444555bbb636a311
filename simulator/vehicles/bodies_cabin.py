"""Bodies of the signals about the vehicle's body and cabin: closures, location, odometer, wheels, climate, motion."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simulator.vehicles.context import Body, Ctx, Value, grid
from simulator.vehicles.life import HOME_RADIUS_KM
from simulator.vehicles.profile import distance_km
from simulator.vehicles.signal_map import SignalSim
from simulator.vehicles.state import CLOSURES, DOORS, WINDOWS

COMPASS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")
TIRE_KPA_PER_C = 0.6
"""Tire pressure follows the outside temperature (about 1 psi per 10 degrees F)."""
LOW_TIRE_KPA = 200


def direction(heading: int) -> str:
    return COMPASS[round(heading / 45) % 8]


def tire_pressures(ctx: Ctx) -> tuple[int, ...]:
    """kPa per tire, row-major: as set by hand, or the profile's at 20 degrees corrected for the outside."""
    if ctx.state.tires is not None:
        return ctx.state.tires
    correction = TIRE_KPA_PER_C * (ctx.now.outside - 20)
    return tuple(round(kpa + correction) for kpa in ctx.profile.tire_kpa)


def _closure(sim: SignalSim) -> Body:
    """{isOpen[, isLocked]} of the closure the signal's entry names."""
    n = CLOSURES[sim.closure or ""]

    def body(ctx: Ctx) -> dict[str, Any]:
        out: dict[str, Any] = {"isOpen": ctx.state.is_open(n)}
        if sim.lockable:
            out["isLocked"] = ctx.state.locked
        return out

    return body


def _location(ctx: Ctx) -> dict[str, Any]:
    now = ctx.now
    return {
        "latitude": round(now.lat, 6),
        "longitude": round(now.lon, 6),
        "heading": now.heading,
        "direction": direction(now.heading),
        "locationType": "CURRENT" if now.driving else "LAST_PARKED",
    }


def _doors(ctx: Ctx) -> dict[str, Any]:
    state = ctx.state
    return grid(2, 2, lambda r, c: {"isOpen": state.is_open(DOORS[2 * r + c]), "isLocked": state.locked})


def _windows(ctx: Ctx) -> dict[str, Any]:
    return grid(2, 2, lambda r, c: {"isOpen": ctx.state.is_open(WINDOWS[2 * r + c])})


def _tires(ctx: Ctx) -> dict[str, Any]:
    pressures = tire_pressures(ctx)
    return grid(2, 2, lambda r, c: {"tirePressure": pressures[2 * r + c]})


VALUES: dict[str, Value] = {
    "locked": lambda c: c.state.locked,
    "at_home": lambda c: distance_km((round(c.now.lat * 1e6), round(c.now.lon * 1e6)), c.profile.home) < HOME_RADIUS_KM,
    "odometer_km": lambda c: round(c.now.odo_km, 1),
    "wheel_style": lambda c: c.profile.wheel_style,
    "outside_c": lambda c: c.now.outside,
    "inside_c": lambda c: c.now.inside,
    "cabin_target_c": lambda c: c.state.target / 10,
    "climate_on": lambda c: c.now.climate,
    "front_defrost_on": lambda c: c.now.climate and bool(c.state.defrost & 1),
    "rear_defrost_on": lambda c: c.now.climate and bool(c.state.defrost & 2),
    "steering_heater_on": lambda c: c.now.climate and c.state.wheel_heat,
    "speed_kph": lambda c: c.now.kph,
    "gear": lambda c: "DRIVE" if c.now.driving else "PARK",
}

BODIES: dict[str, Body] = {
    "doors": _doors,
    "windows": _windows,
    "location": _location,
    "tires": _tires,
    "drive_mode": lambda c: {
        "canonical": c.profile.drive_mode[0],
        "oemDisplayName": c.profile.drive_mode[1],
    },
}

FACTORIES: dict[str, Callable[[SignalSim], Body]] = {"closure": _closure}
"""Builders made per signal from its entry in signals.toml."""
