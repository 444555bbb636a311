"""The simulated vehicle's state: deterministic per seed, evolving lazily in simulated time, compact when encoded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.powertrain import Powertrain
from schemas.vehicle import Vehicle
from simulator.fleet import generate_fleet
from simulator.vehicles import (
    CommandResult,
    SignalReading,
    SimClock,
    VehicleState,
    advance,
    execute,
    initial_state,
    read_signal,
    set_remote_access,
    set_value,
)
from simulator.vehicles.plan import day_plan, local_day, yearly_km
from simulator.vehicles.profile import bearing_deg, distance_km, profile_for
from simulator.vehicles.state import ChargeRecord, Schedule, Trip
from tests.vehicle_helpers import NOW, SEED, full_vehicle, night, read, refusal, stale, value, woken

ROOT = Path(__file__).resolve().parent.parent
HOUR, DAY = 3600.0, 86_400.0


def _next_trip(state: VehicleState, vehicle: Vehicle, t: float) -> tuple[VehicleState, VehicleState, float]:
    """The state just before the vehicle's next departure after t, the state while it drives, and that time."""
    before = advance(state, vehicle, t, SEED)
    while True:
        t += 120
        during = advance(before, vehicle, t, SEED)
        if during.driving:
            return before, during, t
        before = during


def test_same_seed_same_state_other_seed_other_state() -> None:
    """initial_state is a function of (vehicle, seed, now): equal states and first values; another seed differs."""
    for vehicle in generate_fleet(20, seed=4):
        first, again = initial_state(vehicle, 1, NOW), initial_state(vehicle, 1, NOW)
        assert first == again
        assert first.encode() == again.encode()
        assert read_signal(first, vehicle, "odometer-traveleddistance", NOW) == read_signal(
            again, vehicle, "odometer-traveleddistance", NOW
        )
        other = initial_state(vehicle, 2, NOW)
        assert (other.lat, other.lon, other.odo) != (first.lat, first.lon, first.odo)


def test_the_state_does_not_depend_on_the_process() -> None:
    """Another interpreter, with another string-hash seed, draws the same states (nothing hangs on hash order)."""
    code = (
        "from simulator.fleet import generate_fleet\n"
        "from simulator.vehicles import initial_state\n"
        f"print('|'.join(initial_state(v, 3, {NOW}).encode().decode() for v in generate_fleet(12, seed=8)))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    here = "|".join(initial_state(v, 3, NOW).encode().decode() for v in generate_fleet(12, seed=8))
    assert out.stdout.strip() == here


def test_the_odometer_fits_the_model_year() -> None:
    """An older vehicle has driven further; a new one a little; both about as far as their plans drive a year."""
    for year, low, high in ((2016, 40_000, 300_000), (2025, 0, 25_000)):
        vehicle = full_vehicle(Powertrain.ICE, year=year)
        odo = initial_state(vehicle, SEED, NOW).odo / 1000
        assert low < odo < high
        years = (NOW - 1_443_657_600 - (year - 2016) * 365.25 * DAY) / (365.25 * DAY)  # since October before
        assert odo == pytest.approx(years * yearly_km(profile_for(vehicle, SEED)), rel=0.05)


def test_a_trip_moves_the_vehicle_and_adds_distance() -> None:
    """Driving: position, heading and speed change, gear in DRIVE; arriving adds the road distance and uses energy."""
    vehicle = full_vehicle(Powertrain.BEV)
    before, during, t = _next_trip(initial_state(vehicle, SEED, NOW), vehicle, NOW)
    assert during.trip is not None
    start = (before.lat, before.lon)
    target = (during.trip.to_lat, during.trip.to_lon)
    location = read(during, vehicle, "location-preciselocation", t)
    assert location["locationType"] == "CURRENT"
    assert location["heading"] == bearing_deg(start, target)
    assert value(during, vehicle, "transmission-gearstate", t) == "DRIVE"
    assert value(during, vehicle, "motion-currentspeed", t) > 0
    after = advance(during, vehicle, during.trip.arrive + 1, SEED)
    assert not after.driving
    assert (after.lat, after.lon) == target
    road_km = (after.odo - before.odo) / 1000
    assert road_km == pytest.approx(distance_km(start, target) * 1.3, rel=0.01)
    assert road_km > 0.2
    assert after.soc < before.soc
    assert after.heading == bearing_deg(start, target)
    parked = read(woken(after, vehicle, after.at), vehicle, "location-preciselocation", after.at)
    assert (parked["latitude"], parked["longitude"], parked["locationType"]) == (
        target[0] / 1e6,
        target[1] / 1e6,
        "LAST_PARKED",
    )


def test_a_trip_uses_fuel_in_a_combustion_vehicle() -> None:
    """An ICE vehicle's trip lowers its fuel level (or it filled up on the way) and leaves its battery alone."""
    vehicle = full_vehicle(Powertrain.ICE)
    before, during, _ = _next_trip(initial_state(vehicle, SEED, NOW), vehicle, NOW)
    assert during.trip is not None
    after = advance(during, vehicle, during.trip.arrive + 1, SEED)
    assert after.fuel < before.fuel or after.fuel == 10_000
    assert after.soc == before.soc == 0


def test_charging_raises_the_state_of_charge_and_stops_at_the_limit() -> None:
    """Plugged in at night: the rate follows the charger and capacity; at the limit it stops, then it falls asleep."""
    vehicle = full_vehicle(Powertrain.BEV)
    profile = profile_for(vehicle, SEED)
    t = night(vehicle)
    state = initial_state(vehicle, SEED, t)
    assert not state.driving
    for code, setting in (
        ("charge-ischargingcableconnected", True),
        ("tractionbattery-stateofcharge", 40),
        ("charge-chargelimits", 80),
    ):
        state = set_value(state, vehicle, code, setting, t)
    assert value(state, vehicle, "charge-detailedchargingstatus", t) == "CHARGING"
    hour_later = value(state, vehicle, "tractionbattery-stateofcharge", t + HOUR)
    assert hour_later == pytest.approx(40 + profile.charger_kw * 0.9 / profile.capacity_kwh * 100, abs=0.1)
    morning = t + 6 * HOUR - 120
    assert value(state, vehicle, "charge-timetocomplete", t) > 60
    full = advance(state, vehicle, morning, SEED)
    asleep = read_signal(full, vehicle, "tractionbattery-stateofcharge", morning)
    assert refusal(asleep) == "ASLEEP"
    assert stale(asleep).body == {"value": 80.0, "unit": "percent"}
    awake = woken(full, vehicle, morning)
    assert value(awake, vehicle, "charge-detailedchargingstatus", morning) == "FULLY_CHARGED"
    assert value(awake, vehicle, "charge-ischarging", morning) is False
    assert value(awake, vehicle, "charge-energyadded", morning) == pytest.approx(0.4 * profile.capacity_kwh, abs=0.1)


@settings(max_examples=30, deadline=None)
@given(
    index=st.integers(0, 39),
    seed=st.integers(0, 2**31),
    hours=st.floats(0.1, 24 * 6),
    cuts=st.lists(st.floats(0, 1), min_size=10, max_size=10),
)
def test_one_step_equals_many_steps(index: int, seed: int, hours: float, cuts: list[float]) -> None:
    """Advancing to t in one call or in ten calls at random times gives the same state."""
    vehicle = generate_fleet(40, seed=6)[index]
    start = initial_state(vehicle, seed, NOW)
    end = NOW + hours * HOUR
    stepped = start
    for cut in sorted(cuts):
        stepped = advance(stepped, vehicle, NOW + cut * hours * HOUR, seed)
    assert advance(stepped, vehicle, end, seed) == advance(start, vehicle, end, seed)


def test_a_long_gap_costs_little_and_adds_its_distance() -> None:
    """Two years unattended: one bounded call, home again, about two years of the plans' distance added."""
    vehicle = full_vehicle(Powertrain.PHEV)
    state = initial_state(vehicle, SEED, NOW)
    began = time.perf_counter()
    later = advance(state, vehicle, NOW + 730 * DAY, SEED)
    assert time.perf_counter() - began < 0.5
    assert (later.odo - state.odo) / 1000 == pytest.approx(2 * yearly_km(profile_for(vehicle, SEED)), rel=0.15)
    assert later.at == NOW + 730 * DAY


def test_a_parked_vehicle_falls_asleep_and_a_command_wakes_it() -> None:
    """Asleep: reads refused with the value as of falling asleep; a command runs and wakes it; later it sleeps again."""
    vehicle = full_vehicle(Powertrain.ICE)
    t = night(vehicle)
    state = set_value(initial_state(vehicle, SEED, t), vehicle, "connectivitystatus-isasleep", True, t)
    result = read_signal(state, vehicle, "odometer-traveleddistance", t + 60)
    assert refusal(result) == "ASLEEP"
    assert stale(result).oem_updated_at <= t
    assert value(state, vehicle, "connectivitystatus-isasleep", t + 60) is True
    state, outcome = execute(state, vehicle, "unlock", None, t + 60)
    assert isinstance(outcome, CommandResult)
    assert value(state, vehicle, "closure-islocked", t + 120) is False
    assert value(state, vehicle, "connectivitystatus-isasleep", t + 120) is False
    again = t + 60 + profile_for(vehicle, SEED).sleep_after_s + 1
    result = read_signal(state, vehicle, "closure-islocked", again)
    assert refusal(result) == "ASLEEP"
    assert stale(result) == SignalReading({"value": False}, again - 1)


def test_out_of_coverage_reads_and_commands_are_unreachable() -> None:
    """Forced offline: reads UNREACHABLE with the last value, commands UNREACHABLE, isonline readable and false."""
    vehicle = full_vehicle(Powertrain.BEV)
    state = woken(initial_state(vehicle, SEED, NOW), vehicle, NOW)
    offline = set_value(state, vehicle, "connectivitystatus-isonline", False, NOW + 10)
    result = read_signal(offline, vehicle, "tractionbattery-stateofcharge", NOW + 20)
    assert refusal(result) == "UNREACHABLE"
    assert stale(result).body["unit"] == "percent"
    assert refusal(execute(offline, vehicle, "lock", None, NOW + 20)[1]) == "UNREACHABLE"
    assert value(offline, vehicle, "connectivitystatus-isonline", NOW + 20) is False
    online = set_value(offline, vehicle, "connectivitystatus-isonline", True, NOW + 30)
    assert value(online, vehicle, "connectivitystatus-isonline", NOW + 30) is True


def test_a_planned_coverage_gap_makes_a_parked_vehicle_unreachable() -> None:
    """Some days have a gap in coverage: a vehicle parked during it reads as UNREACHABLE, offline."""
    vehicle = full_vehicle(Powertrain.HEV)
    profile = profile_for(vehicle, SEED)
    state = initial_state(vehicle, SEED, NOW)
    for day in range(local_day(profile, NOW) + 1, local_day(profile, NOW) + 60):
        for start, end in day_plan(profile, day).gaps:
            during = advance(state, vehicle, (start + end) / 2, SEED)
            if not during.driving:
                assert refusal(read_signal(during, vehicle, "closure-islocked", during.at)) == "UNREACHABLE"
                assert value(during, vehicle, "connectivitystatus-isonline", during.at) is False
                return
    pytest.fail("no coverage gap in two months")


def test_remote_access_disabled_refuses_reads_and_commands() -> None:
    """With remote access off, reads and commands are REMOTE_ACCESS_DISABLED; identity still reads."""
    vehicle = full_vehicle(Powertrain.BEV)
    state = set_remote_access(woken(initial_state(vehicle, SEED, NOW), vehicle, NOW), vehicle, False, NOW)
    assert refusal(read_signal(state, vehicle, "closure-islocked", NOW + 1)) == "REMOTE_ACCESS_DISABLED"
    assert refusal(execute(state, vehicle, "lock", None, NOW + 1)[1]) == "REMOTE_ACCESS_DISABLED"
    assert value(state, vehicle, "vehicleidentification-vin", NOW + 1) == vehicle.vin
    back = set_remote_access(state, vehicle, True, NOW + 2)
    assert isinstance(read_signal(back, vehicle, "closure-islocked", NOW + 3), SignalReading)


def test_charger_values_outside_a_session_are_not_charging_with_the_last_ones() -> None:
    """Unplugged: charge-wattage is NOT_CHARGING, carrying the last session's value at the time it ended."""
    vehicle = full_vehicle(Powertrain.BEV)
    state = woken(initial_state(vehicle, SEED, NOW), vehicle, NOW)
    state = set_value(state, vehicle, "charge-ischargingcableconnected", False, NOW)
    result = read_signal(state, vehicle, "charge-wattage", NOW + 5)
    assert refusal(result) == "NOT_CHARGING"
    charger_w = round(profile_for(vehicle, SEED).charger_kw * 1000)
    assert stale(result) == SignalReading({"value": charger_w, "unit": "watts"}, state.charged_at or 0)


def test_time_never_runs_backwards() -> None:
    """A read or command dated before the state's time acts at the state's time; advance() to the past is a no-op."""
    vehicle = full_vehicle(Powertrain.BEV)
    state = woken(initial_state(vehicle, SEED, NOW), vehicle, NOW + 100)
    assert advance(state, vehicle, NOW, SEED) is state
    assert read_signal(state, vehicle, "odometer-traveleddistance", NOW) == read_signal(
        state, vehicle, "odometer-traveleddistance", NOW + 100
    )
    assert execute(state, vehicle, "lock", None, NOW)[0].at == NOW + 100


def test_advance_refuses_another_seed_or_no_time() -> None:
    """A state remembers its seed: advancing it with another is an error, not a silently different vehicle; so is
    a time that is not a finite number."""
    vehicle = full_vehicle(Powertrain.ICE)
    state = initial_state(vehicle, SEED, NOW)
    with pytest.raises(ValueError, match="seed"):
        advance(state, vehicle, NOW + 1, SEED + 1)
    with pytest.raises(ValueError, match="finite"):
        advance(state, vehicle, float("nan"), SEED)


def test_encode_decode_round_trip_and_size() -> None:
    """Every field survives encode/decode; a vehicle with every capability and everything set stays under 1 KB."""
    vehicle = full_vehicle(Powertrain.UNKNOWN)
    state = initial_state(vehicle, SEED, NOW)
    assert VehicleState.decode(state.encode()) == state
    busy = replace(
        state,
        trip=Trip(52_520_008, 13_404_954, NOW + 1234.5, 23_456, 789, 321, 48),
        session=(NOW - 3600.25, 4_512),
        records=tuple(
            ChargeRecord(NOW - i * DAY, NOW - i * DAY + 7200.5, 2_000, 8_000, 52_520_008, -13_404_954) for i in range(3)
        ),
        schedules=tuple(Schedule(n, "workweek", "22:00", "06:00", 6) for n in range(7, 11)),
        schedule_n=10,
        dest=(-33_868_820, 151_209_296),
        tires=(180, 235, 236, 240),
        offline_since=NOW - 17.125,
        remote_off_since=NOW - 3.5,
        climate_since=NOW - 60.75,
        defrost=3,
        wheel_heat=True,
        alerts=("B0001", "C0035", "C0750", "P0420", "P0AFA", "U0184"),
        open=(1 << 14) - 1,
        at=NOW + 0.123456,
    )
    data = busy.encode()
    assert VehicleState.decode(data) == busy
    assert len(data) <= 1024
    assert json.loads(data)["v"] == 1


@pytest.mark.parametrize("data", [b"", b"[]", b'{"v": 2}', b'{"v": 1, "s": 1}', b'{"v": 1, "zz": 3}'])
def test_decode_refuses_what_encode_did_not_write(data: bytes) -> None:
    """Bytes that are not an encoded state raise ValueError."""
    with pytest.raises(ValueError, match="not an encoded vehicle state"):
        VehicleState.decode(data)


def test_the_clock_scales_real_time() -> None:
    """Simulated time runs `speed` times as fast from its origins; a speed of 0 or less is refused."""
    clock = SimClock(speed=60, epoch_real=1_000.0, epoch_sim=NOW)
    assert clock.now(1_010.0) == NOW + 600
    assert SimClock(epoch_real=5.0, epoch_sim=7.0).now(6.0) == 8.0
    assert abs(SimClock.starting_now().now() - time.time()) < 5
    with pytest.raises(ValueError, match="speed"):
        SimClock(speed=0, epoch_real=0.0, epoch_sim=0.0)
