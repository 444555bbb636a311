"""Charging rules shared by the daily life, commands and hand-set values: plugging, sessions, the limit.

Each takes a state settled at t (physics.settle): charging then runs from t at the profile's rate and stops by
itself at the limit (physics.full_at); a session is recorded when it ends (stop, unplug, departure).
"""

from __future__ import annotations

from simulator.vehicles.evolve import evolve
from simulator.vehicles.state import CHARGE_PORT, ChargeRecord, VehicleState, bit

MAX_RECORDS = 3
MIN_RECORDED = 50
"""Sessions that added less (hundredths of a percent) are not recorded."""


def plug_in(state: VehicleState, t: float) -> VehicleState:
    """Plugged in and set to charge."""
    return evolve(
        state, plugged=True, charge_on=True, session=(t, state.soc), open=state.open | bit(CHARGE_PORT), awake=t
    )


def end_session(state: VehicleState, t: float) -> VehicleState:
    """The charging session, if any, closed at t (or when it reached the limit) and recorded."""
    if state.session is None:
        return state
    start, soc0 = state.session
    stopped = state.charged_at
    full = state.soc >= state.limit * 100 and stopped is not None and stopped >= start
    end = stopped if full and stopped is not None else t
    records = state.records
    if state.soc - soc0 >= MIN_RECORDED:
        records = (*records, ChargeRecord(start, end, soc0, state.soc, state.lat, state.lon))[-MAX_RECORDS:]
    return evolve(state, session=None, records=records, charged_at=end)


def unplug(state: VehicleState, t: float) -> VehicleState:
    """Unplugged: the session recorded, the port closed."""
    state = end_session(state, t)
    return evolve(state, plugged=False, charge_on=False, open=state.open & ~bit(CHARGE_PORT))


def start_charging(state: VehicleState, t: float) -> VehicleState:
    """Set to charge (plugged in): a session starts unless one is under way."""
    return evolve(state, charge_on=True, session=state.session or (t, state.soc))


def stop_charging(state: VehicleState, t: float) -> VehicleState:
    """Set not to charge: the session ends now."""
    return evolve(end_session(evolve(state, charged_at=t), t), charge_on=False)


def set_limit(state: VehicleState, percent: int, charging: bool, t: float) -> VehicleState:
    """The charge limit set to `percent`: charging under way stops if the battery is there already, resumes if not."""
    if charging and percent * 100 <= state.soc:
        state = evolve(state, charged_at=t)
    if state.plugged and state.charge_on and state.session is None and percent * 100 > state.soc:
        state = evolve(state, session=(t, state.soc))
    return evolve(state, limit=percent)
