"""Setting a vehicle's state by hand (`fleetgate vehicles set VEHICLE SIGNAL VALUE`, faults, scenarios).

`set_value()` takes a signal's value, either bare (`80`, `true`, `"ALERT"`) or in the signal's body shape
(`{"value": 80, "unit": "percent"}`, `{"latitude": 52.5, "longitude": 13.4}`, a doors body with `values`),
and changes the stored quantity the signal reports, so everything derived from it follows (set the state
of charge and the range changes too). Only signals with a setter in signals.toml (`set`) can be set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schemas.vehicle import Vehicle
from simulator.vehicles.bodies_cabin import tire_pressures
from simulator.vehicles.charging import plug_in, set_limit, start_charging, stop_charging, unplug
from simulator.vehicles.context import Ctx
from simulator.vehicles.evolve import evolve
from simulator.vehicles.life import advance
from simulator.vehicles.physics import now_at, settle
from simulator.vehicles.profile import profile_for
from simulator.vehicles.read import capable_signal
from simulator.vehicles.signal_map import SignalMapError, SignalSim, signal_map
from simulator.vehicles.state import CHARGE_PORT, CLOSURES, DOORS, STEP_NONE, WINDOWS, VehicleState, bit

Setter = Callable[[Ctx, Any, SignalSim], VehicleState]
"""Sets a stored quantity from a value (ctx.state is settled at ctx.now.t); the entry names the signal."""


def set_value(state: VehicleState, vehicle: Vehicle, code: str, value: Any, now: float) -> VehicleState:
    """The state (advanced to `now`) with the signal's stored quantity set to `value`.

    Raises ValueError, with a one-line message, for a code the catalog does not know, a signal the vehicle is not
    capable of, one derived from others (without a setter), or a value of the wrong shape or out of range.
    """
    capable_signal(vehicle, code)
    sim = signal_map()[code]
    if sim.set is None:
        raise ValueError(
            f"{code} is derived from the vehicle's state and cannot be set; settable: {', '.join(settable())}"
        )
    return _set(state, vehicle, sim, value, now)


def set_by(state: VehicleState, vehicle: Vehicle, setter: str, value: Any, now: float) -> VehicleState:
    """set_value() by the setter's name (signals.toml `set`), whether or not the vehicle reports the signal: what
    happens to a vehicle (it goes offline, falls asleep, is plugged in) happens to one that does not report it too."""
    sim = next(sim for sim in signal_map().values() if sim.set == setter)
    return _set(state, vehicle, sim, value, now)


def _set(state: VehicleState, vehicle: Vehicle, sim: SignalSim, value: Any, now: float) -> VehicleState:
    state = advance(state, vehicle, max(now, state.at), state.seed)
    t = state.at
    profile = profile_for(vehicle, state.seed)
    ctx = Ctx(vehicle, profile, settle(state, profile, t), now_at(state, profile, t))
    try:
        return SETTERS[sim.set or ""](ctx, value, sim)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{sim.code}: not a value of this signal's shape (missing or wrong {exc})") from exc


def settable() -> list[str]:
    """The signals set_value() can set."""
    return [code for code, sim in signal_map().items() if sim.set is not None]


def set_remote_access(state: VehicleState, vehicle: Vehicle, enabled: bool, now: float) -> VehicleState:
    """The owner enables or disables remote access (disabled: every read and command is REMOTE_ACCESS_DISABLED)."""
    state = advance(state, vehicle, max(now, state.at), state.seed)
    return evolve(state, remote_off_since=None if enabled else (state.remote_off_since or state.at))


def _bare(code: str, value: Any) -> Any:
    """The value of a {"value": ...} body, or the value itself."""
    if isinstance(value, dict):
        if set(value) - {"value", "unit"} or "value" not in value:
            raise ValueError(f"{code}: expected a value or {{'value': ...}}, got keys {sorted(value)}")
        return value["value"]
    return value


def _number(code: str, value: Any, low: float, high: float) -> float:
    value = _bare(code, value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"{code}: expected a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


def _flag(code: str, value: Any, key: str = "value") -> bool:
    if isinstance(value, dict):
        if key not in value:
            raise ValueError(f"{code}: expected true, false or {{'{key}': ...}}, got keys {sorted(value)}")
        value = value[key]
    if not isinstance(value, bool):
        raise ValueError(f"{code}: expected true or false, got {value!r}")
    return value


def _stored(low: float, high: float, scale: float, store: Callable[[VehicleState, int], VehicleState]) -> Setter:
    """A number from `low` to `high`, stored as round(value * scale)."""
    return lambda ctx, value, sim: store(ctx.state, round(_number(sim.code, value, low, high) * scale))


def _flagged(apply: Callable[[VehicleState, bool], VehicleState], climate: bool = False) -> Setter:
    """A flag stored by `apply`; with `climate`, turning it on turns the cabin climate on too."""

    def setter(ctx: Ctx, value: Any, sim: SignalSim) -> VehicleState:
        on = _flag(sim.code, value)
        state = apply(ctx.state, on)
        return evolve(state, climate_since=ctx.now.t) if on and climate else state

    return setter


def _soc(state: VehicleState, soc: int) -> VehicleState:
    """The state of charge set by hand: a charging session under way counts from it."""
    return evolve(state, soc=soc, session=None if state.session is None else (state.t0, soc))


def _fuel_amount(ctx: Ctx, value: Any, sim: SignalSim) -> VehicleState:
    tank = ctx.profile.tank_l
    return evolve(ctx.state, fuel=round(_number(sim.code, value, 0, tank) / tank * 10_000))


def _location(ctx: Ctx, value: Any, sim: SignalSim) -> VehicleState:
    code, s = sim.code, ctx.state
    if not isinstance(value, dict):
        raise ValueError(f"{code}: expected {{'latitude': ..., 'longitude': ...[, 'heading': ...]}}")
    lat, lon = _number(code, value["latitude"], -90, 90), _number(code, value["longitude"], -180, 180)
    heading = round(_number(code, value.get("heading", s.heading), 0, 359.99))
    if s.trip is not None:
        s = evolve(s, trip=None, since=ctx.now.t, awake=ctx.now.t, step=STEP_NONE)  # put down there, parked
    return evolve(s, lat=round(lat * 1e6), lon=round(lon * 1e6), heading=heading)


def _grid(bits: tuple[int, ...], lockable: bool) -> Setter:
    def setter(ctx: Ctx, value: Any, sim: SignalSim) -> VehicleState:
        code = sim.code
        entries = value["values"] if isinstance(value, dict) else value
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ValueError(f"{code}: expected {{'values': [{{'row': 0, 'column': 0, 'isOpen': true}}, ...]}}")
        opened, locks = ctx.state.open, {_flag(code, e, "isLocked") for e in entries if lockable and "isLocked" in e}
        if len(locks) > 1:
            raise ValueError(f"{code}: the doors lock together, so isLocked must be the same for all")
        for entry in entries:
            row, column = entry["row"], entry["column"]
            if row not in (0, 1) or column not in (0, 1):
                raise ValueError(f"{code}: row and column are 0 or 1, got {row!r}, {column!r}")
            if "isOpen" in entry:
                n = bits[2 * row + column]
                opened = opened | bit(n) if _flag(code, entry, "isOpen") else opened & ~bit(n)
        return evolve(ctx.state, open=opened, locked=locks.pop() if locks else ctx.state.locked)

    return setter


def _closure(ctx: Ctx, value: Any, sim: SignalSim) -> VehicleState:
    s, n = ctx.state, CLOSURES[sim.closure or ""]
    is_open = _flag(sim.code, value, "isOpen")
    locked = _flag(sim.code, value, "isLocked") if isinstance(value, dict) and "isLocked" in value else s.locked
    return evolve(s, open=s.open | bit(n) if is_open else s.open & ~bit(n), locked=locked)


def _cable(ctx: Ctx, value: Any, sim: SignalSim) -> VehicleState:
    s, wanted = ctx.state, _flag(sim.code, value)
    if wanted and s.trip is not None:
        raise ValueError(f"{sim.code}: a driving vehicle cannot be plugged in")
    if wanted == s.plugged:
        return s
    return plug_in(s, ctx.now.t) if wanted else unplug(s, ctx.now.t)


def _charging(ctx: Ctx, value: Any, sim: SignalSim) -> VehicleState:
    if not _flag(sim.code, value):
        return stop_charging(ctx.state, ctx.now.t)
    if not ctx.state.plugged:
        raise ValueError(f"{sim.code}: the vehicle is not plugged in (set its cable connected first)")
    return start_charging(ctx.state, ctx.now.t)


def _charge_port(ctx: Ctx, value: Any, sim: SignalSim) -> VehicleState:
    is_open, s = _flag(sim.code, value), ctx.state
    if not is_open and s.plugged:
        raise ValueError(f"{sim.code}: the charge port cannot close with the cable in")
    return evolve(s, open=s.open | bit(CHARGE_PORT) if is_open else s.open & ~bit(CHARGE_PORT))


def _charge_limit(ctx: Ctx, value: Any, sim: SignalSim) -> VehicleState:
    if isinstance(value, dict) and "activeLimit" in value:
        value = value["activeLimit"]
    percent = round(_number(sim.code, value, 50, 100))
    return set_limit(ctx.state, percent, ctx.now.charging, ctx.now.t)


def _asleep(ctx: Ctx, value: Any, sim: SignalSim) -> VehicleState:
    t = ctx.now.t
    if not _flag(sim.code, value):
        return evolve(ctx.state, awake=t)
    if ctx.now.driving or ctx.now.charging:
        raise ValueError(f"{sim.code}: a driving or charging vehicle stays awake")
    return evolve(ctx.state, climate_since=None, awake=t - ctx.profile.sleep_after_s)


def _tires(ctx: Ctx, value: Any, sim: SignalSim) -> VehicleState:
    current = list(tire_pressures(ctx))
    entries = value["values"] if isinstance(value, dict) else value
    if not isinstance(entries, list):
        raise ValueError(f"{sim.code}: expected {{'values': [{{'row': 0, 'column': 0, 'tirePressure': 180}}, ...]}}")
    for entry in entries:
        current[2 * entry["row"] + entry["column"]] = round(_number(sim.code, entry["tirePressure"], 0, 500))
    return evolve(ctx.state, tires=(current[0], current[1], current[2], current[3]), alerts_at=ctx.now.t)


def _diagnostic(ctx: Ctx, value: Any, sim: SignalSim) -> VehicleState:
    status = value.get("status") if isinstance(value, dict) else value
    if status not in ("OK", "ALERT"):
        raise ValueError(f'{sim.code}: expected "OK", "ALERT" or {{\'status\': ...}}, got {status!r}')
    others = tuple(dtc for dtc in ctx.state.alerts if dtc != sim.dtc)
    alerts = tuple(sorted((*others, sim.dtc or ""))) if status == "ALERT" else others
    return evolve(ctx.state, alerts=alerts, alerts_at=ctx.now.t)


def _defrost(mask: int) -> Setter:
    return _flagged(lambda s, on: evolve(s, defrost=s.defrost | mask if on else s.defrost & ~mask), climate=True)


SETTERS: dict[str, Setter] = {
    "soc": _stored(0, 100, 100, _soc),
    "fuel_level": _stored(0, 100, 100, lambda s, v: evolve(s, fuel=v)),
    "fuel_amount": _fuel_amount,
    "lv_battery": _stored(0, 100, 10, lambda s, v: evolve(s, lv=v)),
    "odometer": _stored(0, 2_000_000, 1000, lambda s, v: evolve(s, odo=v)),
    "location": _location,
    "locked": _flagged(lambda s, on: evolve(s, locked=on)),
    "doors": _grid(DOORS, lockable=True),
    "windows": _grid(WINDOWS, lockable=False),
    "closure": _closure,
    "charge_limit": _charge_limit,
    "cable": _cable,
    "charging": _charging,
    "charge_port": _charge_port,
    "climate": _flagged(lambda s, on: s if on else evolve(s, climate_since=None), climate=True),
    "cabin_target": _stored(15, 28, 2, lambda s, v: evolve(s, target=v * 5)),
    "front_defrost": _defrost(1),
    "rear_defrost": _defrost(2),
    "steering_heater": _flagged(lambda s, on: evolve(s, wheel_heat=on), climate=True),
    "asleep": _asleep,
    "online": _flagged(lambda s, on: evolve(s, offline_since=None if on else (s.offline_since or s.t0))),
    "tires": _tires,
    "diagnostic": _diagnostic,
}
"""Setters by the name signals.toml gives them (`set`)."""


def check_setters() -> None:
    """Raise SignalMapError if signals.toml names a setter that does not exist."""
    for code, sim in signal_map().items():
        if sim.set is not None and sim.set not in SETTERS:
            raise SignalMapError(f"signals.toml [signals.{code}]: no setter named {sim.set!r}")
