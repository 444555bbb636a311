"""Reading a signal: its body at the vehicle's last report, or the vehicle state that refuses a fresh value.

A read is refused, in this order, when the owner disabled remote access (REMOTE_ACCESS_DISABLED), when the
vehicle is out of coverage (UNREACHABLE), when it is asleep (ASLEEP: a read does not wake it), and, for the
values a charger reports only while charging (signals.toml: source "charger"), when it is not charging
(NOT_CHARGING). A refusal carries the value the vehicle last reported (as Smartcar keeps it, with its older
oemUpdatedAt), when there is one. Signals the OEM's cloud knows without asking the vehicle (source "cloud":
identity, connectivity, account, service, battery capacity, configuration) are never refused.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from schemas.catalog import get_catalog
from schemas.vehicle import Vehicle
from simulator.vehicles import bodies_cabin, bodies_energy, bodies_info
from simulator.vehicles.context import Body, Ctx, Value
from simulator.vehicles.life import advance
from simulator.vehicles.physics import full_at, now_at
from simulator.vehicles.profile import profile_for
from simulator.vehicles.results import SignalReading, VehicleProblem, vehicle_state
from simulator.vehicles.signal_map import SignalMapError, signal_map
from simulator.vehicles.state import CLOSURES, VehicleState

REPORT_S = 30
"""An awake vehicle reports every REPORT_S seconds (and at once when something happens)."""


def _wrapped(code: str, value_of: Value) -> Body:
    unit = get_catalog().signal(code).unit

    def body(ctx: Ctx) -> dict[str, Any]:
        out = {"value": value_of(ctx)}
        if unit is not None:
            out["unit"] = unit
        return out

    return body


@cache
def body_builders() -> dict[str, Body]:
    """Every catalog signal's body builder, by code, as signals.toml assigns them (checked here, once)."""
    modules = (bodies_energy, bodies_cabin, bodies_info)
    values = {name: f for m in modules for name, f in m.VALUES.items()}
    bodies = {name: f for m in modules for name, f in m.BODIES.items()}
    factories = {**bodies_cabin.FACTORIES, **bodies_info.FACTORIES}
    builders = {}
    for code, sim in signal_map().items():
        where = f"signals.toml [signals.{code}]"
        if sim.closure is not None and sim.closure not in CLOSURES:
            raise SignalMapError(f"{where}: unknown closure {sim.closure!r}; known: {', '.join(CLOSURES)}")
        if sim.alert_when is not None and sim.alert_when not in bodies_info.ALERT_RULES:
            raise SignalMapError(f"{where}: unknown alert rule {sim.alert_when!r}")
        if sim.value is not None and sim.value in values:
            builders[code] = _wrapped(code, values[sim.value])
        elif sim.body is not None and sim.body in factories:
            builders[code] = factories[sim.body](sim)
        elif sim.body is not None and sim.body in bodies:
            builders[code] = bodies[sim.body]
        else:
            raise SignalMapError(f"{where}: no {'value' if sim.value else 'body'} builder named {sim.builder!r}")
    return builders


def capable_signal(vehicle: Vehicle, code: str) -> None:
    """Raise ValueError (one line) unless `code` is a signal of the catalog that the vehicle is capable of."""
    if code in vehicle.capabilities and code in signal_map():  # signal_map() has every catalog signal, by code
        return  # the common case, without the catalog's lookup (a pydantic private attribute: 1 us)
    get_catalog().signal(code)  # an unknown code raises UnknownNameError, a ValueError naming close matches
    if code not in vehicle.capabilities:
        raise ValueError(f"vehicle {vehicle.id} is not capable of {code}")


def body_at(state: VehicleState, vehicle: Vehicle, code: str, t: float) -> dict[str, Any]:
    """The signal's body as the vehicle would report it at t (t not before state.t0)."""
    profile = profile_for(vehicle, state.seed)
    return body_builders()[code](Ctx(vehicle, profile, state, now_at(state, profile, t)))


def read_signal(state: VehicleState, vehicle: Vehicle, code: str, now: float) -> SignalReading | VehicleProblem:
    """The signal's value at `now` (the state advanced there first), or the vehicle state refusing it.

    Raises ValueError for a code the catalog does not know or the vehicle is not capable of (the gatekeeper has
    answered those already).
    """
    capable_signal(vehicle, code)
    return _read(advance(state, vehicle, max(now, state.at), state.seed), vehicle, code)


def read_advanced(state: VehicleState, vehicle: Vehicle, code: str) -> SignalReading | VehicleProblem:
    """read_signal() at `state.at`, for a state already advanced to the read's time (answer() advances it first:
    not twice)."""
    capable_signal(vehicle, code)
    return _read(state, vehicle, code)


def _read(state: VehicleState, vehicle: Vehicle, code: str) -> SignalReading | VehicleProblem:
    t = state.at
    profile = profile_for(vehicle, state.seed)
    here = now_at(state, profile, t)

    def reading(at: float) -> SignalReading:
        at = min(t, max(at, state.t0))
        # Reported just now (awake since t, or t on a report): the instant already projected.
        instant = here if at == t else now_at(state, profile, at)
        return SignalReading(body_builders()[code](Ctx(vehicle, profile, state, instant)), at)

    source = signal_map()[code].source
    if source == "cloud":
        return SignalReading(body_builders()[code](Ctx(vehicle, profile, state, here)), t)
    if state.remote_off_since is not None:
        return vehicle_state("REMOTE_ACCESS_DISABLED", reading(state.remote_off_since))
    if here.gap is not None:
        return vehicle_state("UNREACHABLE", reading(max(here.gap[0], state.since)))
    if here.asleep:
        assert here.asleep_since is not None
        return vehicle_state("ASLEEP", reading(here.asleep_since))
    if source == "charger" and not here.charging:
        reached_limit = here.full and state.soc < state.limit * 100  # since t0, so not yet stored
        last = full_at(state, profile) if reached_limit else state.charged_at
        return vehicle_state("NOT_CHARGING", None if last is None else _last_session(state, vehicle, code, last))
    return reading(max(t - t % REPORT_S, state.since, state.awake))


def _last_session(state: VehicleState, vehicle: Vehicle, code: str, at: float) -> SignalReading:
    """What the charger reported last: its values, with the time the vehicle stopped charging."""
    body = body_at(state, vehicle, code, state.at)
    return SignalReading(body, at)
