"""A vehicle state's encoding: any state survives encode/decode, and its JSON holds what the first encoder wrote
(json.dumps of the same fields), so states stored before decode as they did."""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from simulator.vehicles.state import _SHORT, ChargeRecord, Schedule, Trip, VehicleState

ints = st.integers(-(2**53), 2**53)
# Times as the model makes them: whole seconds or not, around now, or anywhere (tiny and huge ones included).
times = st.floats(1e9, 3e9) | st.integers(0, 3 * 10**9).map(float) | st.floats(allow_nan=False, allow_infinity=False)
texts = st.text(max_size=8)
trips = st.builds(Trip, ints, ints, times, ints, ints, ints, ints)
records = st.builds(ChargeRecord, times, times, ints, ints, ints, ints)
schedules = st.builds(Schedule, ints, texts, texts, texts, ints)
states = st.builds(
    VehicleState,
    seed=ints,
    at=times,
    t0=times,
    since=times,
    lat=ints,
    lon=ints,
    heading=ints,
    odo=ints,
    soc=ints,
    fuel=ints,
    lv=ints,
    limit=ints,
    trip=st.none() | trips,
    plugged=st.booleans(),
    charge_on=st.booleans(),
    session=st.none() | st.tuples(times, ints),
    charged_at=st.none() | times,
    records=st.lists(records, max_size=3).map(tuple),
    open=ints,
    locked=st.booleans(),
    climate_since=st.none() | times,
    target=ints,
    defrost=ints,
    wheel_heat=st.booleans(),
    dest=st.none() | st.tuples(ints, ints),
    awake=times,
    step=ints,
    offline_since=st.none() | times,
    remote_off_since=st.none() | times,
    tires=st.none() | st.tuples(ints, ints, ints, ints),
    alerts=st.lists(texts, max_size=3).map(tuple),
    alerts_at=times,
    schedules=st.lists(schedules, max_size=4).map(tuple),
    schedule_n=ints,
)


def _first_encoding(state: VehicleState) -> bytes:
    """encode() as first written: json.dumps of the fields that differ from their defaults."""

    def plain(value: Any) -> Any:
        if isinstance(value, Trip | ChargeRecord | Schedule):
            return [plain(getattr(value, f.name)) for f in fields(value)]
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    out: dict[str, Any] = {"v": 1}
    for f in fields(state):
        value = getattr(state, f.name)
        if f.default is not MISSING and value == f.default:
            continue
        out[_SHORT[f.name]] = plain(value)
    return json.dumps(out, separators=(",", ":")).encode()


@given(states)
def test_any_state_survives_encoding(state: VehicleState) -> None:
    assert VehicleState.decode(state.encode()) == state


@given(states)
def test_the_encoding_is_the_first_encoders_json(state: VehicleState) -> None:
    """The same JSON values, in the same order (the bytes differ only for floats under 1e-4 and non-ASCII text); and
    what the first encoder wrote still decodes to the same state."""
    first = _first_encoding(state)
    assert list(json.loads(state.encode()).items()) == list(json.loads(first).items())
    assert VehicleState.decode(first) == state
