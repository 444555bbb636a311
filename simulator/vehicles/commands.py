"""Commands: each changes the state by the rules a real vehicle follows, or is refused with Smartcar's reason.

Every command is refused when the owner disabled remote access (REMOTE_ACCESS_DISABLED), when the vehicle is
out of coverage (UNREACHABLE) and when its 12 V battery is too low to wake it (LOW_BATTERY). Otherwise a
command WAKES the vehicle (Smartcar sends commands to sleeping vehicles; reads it does not), so the state
`execute()` returns must be stored even when the command itself is then refused. Each command's effect shows
in a later read (see the handlers), except those in NO_SIMULATED_EFFECT.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schemas.catalog import get_catalog
from schemas.vehicle import Vehicle
from simulator.vehicles.bodies_info import LV_LOW_PCT
from simulator.vehicles.charging import set_limit, start_charging, stop_charging
from simulator.vehicles.context import Ctx
from simulator.vehicles.evolve import evolve
from simulator.vehicles.life import advance, start_trip
from simulator.vehicles.physics import now_at, settle
from simulator.vehicles.plan import local_day
from simulator.vehicles.profile import profile_for
from simulator.vehicles.results import CommandResult, VehicleProblem, done, vehicle_state
from simulator.vehicles.state import (
    BLOCKS_LOCKING,
    CHARGE_PORT,
    FRONT_TRUNK,
    REAR_TRUNK,
    Schedule,
    VehicleState,
    bit,
)

Outcome = tuple[VehicleState, CommandResult | VehicleProblem]
Handler = Callable[[Ctx, dict[str, Any]], Outcome]

NO_SIMULATED_EFFECT: dict[str, str] = {
    "enable-pin-to-drive": "no catalog signal reports PIN to Drive, and simulated drivers always know the PIN",
    "clear-pin-to-drive": "no catalog signal reports PIN to Drive",
}
"""Commands that succeed without changing what any signal reports, and why."""
MAX_SCHEDULES = 4
"""More charge schedules than this: the oldest goes."""
CLIMATE_MIN_SOC_PCT = 10
"""A BEV below this state of charge refuses to run its climate (LOW_BATTERY)."""


def execute(
    state: VehicleState, vehicle: Vehicle, command: str, params: dict[str, Any] | None, now: float
) -> tuple[VehicleState, CommandResult | VehicleProblem]:
    """Run the command at `now` (the state advanced there first): the new state and the outcome.

    Raises ValueError for a command the catalog does not know, the vehicle is not capable of, or invalid
    parameters (the gatekeeper has answered those already).
    """
    found = get_catalog().command(command)
    if command not in vehicle.capabilities:
        raise ValueError(f"vehicle {vehicle.id} is not capable of {command}")
    problem = found.params_problem(params)
    if problem is not None:
        raise ValueError(problem)
    state = advance(state, vehicle, max(now, state.at), state.seed)
    t = state.at
    profile = profile_for(vehicle, state.seed)
    here = now_at(state, profile, t)
    if state.remote_off_since is not None:
        return state, vehicle_state("REMOTE_ACCESS_DISABLED")
    if here.gap is not None:
        return state, vehicle_state("UNREACHABLE")
    if here.lv < LV_LOW_PCT:
        return state, vehicle_state("LOW_BATTERY")
    awake = settle(evolve(state, awake=t), profile, t)
    return HANDLERS[command](Ctx(vehicle, profile, awake, here), params or {})


def _lock(ctx: Ctx, _args: dict[str, Any]) -> Outcome:
    state = ctx.state
    if ctx.now.driving:
        return state, vehicle_state("IN_MOTION")
    if any(state.is_open(n) for n in BLOCKS_LOCKING):
        return state, vehicle_state("DOOR_OPEN")
    return evolve(state, locked=True), done("doors locked")


def _unlock(ctx: Ctx, _args: dict[str, Any]) -> Outcome:
    if ctx.now.driving:
        return ctx.state, vehicle_state("IN_MOTION")
    return evolve(ctx.state, locked=False), done("doors unlocked")


def _start_charge(ctx: Ctx, _args: dict[str, Any]) -> Outcome:
    state, here = ctx.state, ctx.now
    if not state.plugged:
        return state, vehicle_state("CHARGING_PLUG_NOT_CONNECTED")
    if here.charging:
        return state, vehicle_state("CHARGING_IN_PROGRESS")
    if here.full:
        return state, vehicle_state("FULLY_CHARGED")
    return start_charging(state, here.t), done("charging started")


def _stop_charge(ctx: Ctx, _args: dict[str, Any]) -> Outcome:
    state, here = ctx.state, ctx.now
    if not state.plugged:
        return state, vehicle_state("CHARGING_PLUG_NOT_CONNECTED")
    if not here.charging:
        return state, vehicle_state("NOT_CHARGING")
    return stop_charging(state, here.t), done("charging stopped")


def _set_charge_limit(ctx: Ctx, args: dict[str, Any]) -> Outcome:
    percent = int(args["percent"])
    return set_limit(ctx.state, percent, ctx.now.charging, ctx.now.t), done(f"charge limit set to {percent}%")


def _open(n: int, what: str) -> Handler:
    def handler(ctx: Ctx, _args: dict[str, Any]) -> Outcome:
        if ctx.now.driving:
            return ctx.state, vehicle_state("IN_MOTION")
        return evolve(ctx.state, open=ctx.state.open | bit(n)), done(f"{what} opened")

    return handler


def _close(n: int, what: str) -> Handler:
    def handler(ctx: Ctx, _args: dict[str, Any]) -> Outcome:
        if n == CHARGE_PORT and ctx.state.plugged:
            return ctx.state, vehicle_state("CHARGING_PLUG_CONNECTED")
        return evolve(ctx.state, open=ctx.state.open & ~bit(n)), done(f"{what} closed")

    return handler


def _set_destination(ctx: Ctx, args: dict[str, Any]) -> Outcome:
    dest = (round(float(args["latitude"]) * 1e6), round(float(args["longitude"]) * 1e6))
    state = evolve(ctx.state, dest=dest)
    if state.trip is None:
        return state, done("destination set: the next trip drives there")
    return start_trip(state, ctx.profile, dest, ctx.now.t, state.trip.kph), done("destination set: rerouted there")


def _set_schedule(ctx: Ctx, args: dict[str, Any]) -> Outcome:
    state, n = ctx.state, ctx.state.schedule_n + 1
    weekday = (local_day(ctx.profile, ctx.now.t) + 3) % 7
    schedule = Schedule(n, str(args["frequency"]), str(args["start"]), str(args["end"]), weekday)
    state = evolve(state, schedules=(*state.schedules, schedule)[-MAX_SCHEDULES:], schedule_n=n)
    return state, done(f"charge schedule sched-{n} set ({schedule.frequency} {schedule.start}-{schedule.end})")


def _delete_schedule(ctx: Ctx, args: dict[str, Any]) -> Outcome:
    wanted, schedules = str(args["schedule_id"]), ctx.state.schedules
    kept = tuple(s for s in schedules if f"sched-{s.n}" != wanted)
    if len(kept) == len(schedules):
        return ctx.state, done(f"no charge schedule {wanted}: nothing deleted")
    return evolve(ctx.state, schedules=kept), done(f"charge schedule {wanted} deleted")


def _climate(defrost: int | None, effect: str) -> Handler:
    """Climate on (with the defrosters, if `defrost` is given), refused by a nearly empty BEV."""

    def handler(ctx: Ctx, _args: dict[str, Any]) -> Outcome:
        state, profile = ctx.state, ctx.profile
        if profile.has_battery and not profile.has_tank and ctx.now.soc < CLIMATE_MIN_SOC_PCT:
            return state, vehicle_state("LOW_BATTERY")
        return evolve(state, climate_since=ctx.now.t, defrost=state.defrost if defrost is None else defrost), done(
            effect
        )

    return handler


def _stop_climate(ctx: Ctx, _args: dict[str, Any]) -> Outcome:
    return evolve(ctx.state, climate_since=None, defrost=0, wheel_heat=False), done("climate off")


def _stop_defrost(ctx: Ctx, _args: dict[str, Any]) -> Outcome:
    return evolve(ctx.state, defrost=0), done("defrosters off")


def _set_temperature(ctx: Ctx, args: dict[str, Any]) -> Outcome:
    target = round(float(args["celsius"]) * 2) * 5  # tenths of a degree, in half-degree steps
    return evolve(ctx.state, target=target), done(f"cabin target temperature set to {target / 10:g} °C")


def _steering_heater(ctx: Ctx, args: dict[str, Any]) -> Outcome:
    if not args["on"]:
        return evolve(ctx.state, wheel_heat=False), done("steering wheel heater off")
    state, outcome = _climate(None, "steering wheel heater on")(ctx, args)
    return (evolve(state, wheel_heat=True) if isinstance(outcome, CommandResult) else state), outcome


def _no_effect(effect: str) -> Handler:
    def handler(ctx: Ctx, _args: dict[str, Any]) -> Outcome:
        return ctx.state, done(effect)

    return handler


HANDLERS: dict[str, Handler] = {
    "lock": _lock,
    "unlock": _unlock,
    "start-charge": _start_charge,
    "stop-charge": _stop_charge,
    "set-charge-limit": _set_charge_limit,
    "open-charge-port": _open(CHARGE_PORT, "charge port"),
    "close-charge-port": _close(CHARGE_PORT, "charge port"),
    "set-destination": _set_destination,
    "set-charge-schedule": _set_schedule,
    "delete-charge-schedule": _delete_schedule,
    "open-trunk": _open(REAR_TRUNK, "trunk"),
    "close-trunk": _close(REAR_TRUNK, "trunk"),
    "open-frunk": _open(FRONT_TRUNK, "frunk"),
    "close-frunk": _close(FRONT_TRUNK, "frunk"),
    "start-climate": _climate(None, "climate on"),
    "stop-climate": _stop_climate,
    "set-cabin-temperature": _set_temperature,
    "start-defrost": _climate(3, "defrosters on"),
    "stop-defrost": _stop_defrost,
    "set-steering-heater": _steering_heater,
    "enable-pin-to-drive": _no_effect("PIN to Drive enabled"),
    "clear-pin-to-drive": _no_effect("PIN to Drive cleared"),
}
"""One handler per catalog command (tests check it covers the catalog exactly)."""
