"""Commands change the simulated vehicle by a real vehicle's rules; set_value() sets it by hand, refusing nonsense."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.catalog import get_catalog
from schemas.errors import UnknownNameError
from schemas.powertrain import Powertrain
from schemas.vehicle import Vehicle
from simulator.vehicles import (
    NO_SIMULATED_EFFECT,
    CommandResult,
    VehicleState,
    advance,
    execute,
    initial_state,
    set_value,
    settable,
)
from simulator.vehicles.read import body_builders
from tests.vehicle_helpers import NOW, SEED, full_vehicle, night, problem, read, refusal, value, woken

T = NOW + 10
"""When the commands run: the vehicle woken and parked at NOW (see `parked`)."""
PLUGGED = (("tractionbattery-stateofcharge", 50), ("charge-ischargingcableconnected", True))

# command, params, settings before it (set_value), signal read after it, expected (a body key's value)
EFFECTS: list[tuple[str, dict[str, Any] | None, tuple[tuple[str, Any], ...], str, str, Any]] = [
    ("lock", None, (("closure-islocked", False),), "closure-islocked", "value", True),
    ("lock", None, (("closure-islocked", False),), "closure-doors", "values", "all locked"),
    ("unlock", None, (("closure-islocked", True),), "closure-islocked", "value", False),
    ("start-charge", None, (*PLUGGED, ("charge-ischarging", False)), "charge-ischarging", "value", True),
    ("stop-charge", None, PLUGGED, "charge-detailedchargingstatus", "value", "NOT_CHARGING"),
    ("set-charge-limit", {"percent": 65}, (), "charge-chargelimits", "activeLimit", 65),
    ("open-charge-port", None, (), "charge-ischargingportflapopen", "value", True),
    (
        "close-charge-port",
        None,
        (("charge-ischargingportflapopen", True),),
        "charge-ischargingportflapopen",
        "value",
        False,
    ),
    (
        "set-charge-schedule",
        {"frequency": "workweek", "start": "23:30", "end": "05:00"},
        (),
        "charge-chargetimers",
        "values",
        "one workweek",
    ),
    ("open-trunk", None, (), "closure-reartrunk", "isOpen", True),
    ("close-trunk", None, (("closure-reartrunk", True),), "closure-reartrunk", "isOpen", False),
    ("open-frunk", None, (), "closure-fronttrunk", "isOpen", True),
    ("close-frunk", None, (("closure-fronttrunk", True),), "closure-fronttrunk", "isOpen", False),
    ("start-climate", None, (), "hvac-iscabinhvacactive", "value", True),
    ("stop-climate", None, (("hvac-iscabinhvacactive", True),), "hvac-iscabinhvacactive", "value", False),
    ("set-cabin-temperature", {"celsius": 23.4}, (), "hvac-cabintargettemperature", "value", 23.5),
    ("start-defrost", None, (), "hvac-isreardefrosteractive", "value", True),
    ("stop-defrost", None, (("hvac-isfrontdefrosteractive", True),), "hvac-isfrontdefrosteractive", "value", False),
    ("set-steering-heater", {"on": True}, (), "hvac-issteeringheateractive", "value", True),
]


def parked(vehicle: Vehicle, *settings: tuple[str, Any]) -> VehicleState:
    """The vehicle at NOW, awake and parked (put down where it is if it was driving), with `settings` applied."""
    state = woken(initial_state(vehicle, SEED, NOW), vehicle, NOW)
    if state.driving:
        state = set_value(state, vehicle, "location-preciselocation", {"latitude": 45.0, "longitude": -75.0}, NOW)
    for code, setting in settings:
        state = set_value(state, vehicle, code, setting, NOW)
    return state


def driving(vehicle: Vehicle) -> VehicleState:
    state, t = initial_state(vehicle, SEED, NOW), NOW
    while not state.driving:
        t += 300
        state = advance(state, vehicle, t, SEED)
    return state


def _matches(found: Any, expected: Any) -> bool:
    if expected == "all locked":
        return all(door["isLocked"] for door in found)
    if expected == "one workweek":
        return [v["type"] for v in found] == ["WORKWEEK"] and found[0]["schedules"][0]["days"][-1] == "FRIDAY"
    return bool(found == expected)


@pytest.mark.parametrize(("command", "params", "before", "code", "key", "expected"), EFFECTS)
def test_a_command_shows_in_a_later_read(
    command: str, params: dict[str, Any] | None, before: tuple[tuple[str, Any], ...], code: str, key: str, expected: Any
) -> None:
    """The command succeeds and the signal that reports its effect changes accordingly."""
    vehicle = full_vehicle(Powertrain.BEV)
    state = parked(vehicle, *before)
    assert not _matches(read(state, vehicle, code, T)[key], expected)
    state, outcome = execute(state, vehicle, command, params, T)
    assert isinstance(outcome, CommandResult), outcome
    assert outcome.status == "SUCCESS"
    assert outcome.effect
    assert _matches(read(state, vehicle, code, T + 5)[key], expected)


def test_every_command_has_an_effect_or_a_reason_for_none() -> None:
    """Each catalog command is tested for its effect above, or listed in NO_SIMULATED_EFFECT with a reason."""
    tested = {command for command, *_ in EFFECTS} | {"set-destination", "delete-charge-schedule"}
    assert tested | set(NO_SIMULATED_EFFECT) == {c.name for c in get_catalog().commands}
    assert not tested & set(NO_SIMULATED_EFFECT)
    assert all(reason for reason in NO_SIMULATED_EFFECT.values())


@pytest.mark.parametrize("command", sorted(NO_SIMULATED_EFFECT))
def test_commands_without_effect_succeed_and_change_no_signal(command: str) -> None:
    """PIN to Drive succeeds and every signal reads the same afterwards."""
    vehicle = full_vehicle(Powertrain.ICE)
    state = parked(vehicle)
    params = get_catalog().command(command).example_params or None
    after, outcome = execute(state, vehicle, command, params, T)
    assert isinstance(outcome, CommandResult)
    for code in sorted(c for c in vehicle.capabilities if c in body_builders()):
        assert read(after, vehicle, code, T) == read(state, vehicle, code, T), code


def test_set_destination_drives_the_next_trip_there() -> None:
    """Parked: the next trip ends at the destination. Driving: the trip is rerouted and arrives there."""
    vehicle = full_vehicle(Powertrain.ICE)
    spot = {"latitude": 43.70011, "longitude": -79.4163}
    state, outcome = execute(parked(vehicle), vehicle, "set-destination", spot, T)
    assert isinstance(outcome, CommandResult)
    t = T
    while not state.driving:
        t += 300
        state = advance(state, vehicle, t, SEED)
    assert state.trip is not None
    arrived = advance(state, vehicle, state.trip.arrive + 1, SEED)
    assert (arrived.lat, arrived.lon, arrived.dest) == (43_700_110, -79_416_300, None)
    moving = driving(vehicle)
    rerouted, outcome = execute(moving, vehicle, "set-destination", spot, moving.at)
    assert isinstance(outcome, CommandResult)
    assert "rerouted" in outcome.effect
    assert rerouted.trip is not None
    assert (rerouted.trip.to_lat, rerouted.trip.to_lon) == (43_700_110, -79_416_300)


def test_a_charge_schedule_is_deleted_by_its_id() -> None:
    """set-charge-schedule names its schedule; delete-charge-schedule removes it; an unknown id deletes nothing."""
    vehicle = full_vehicle(Powertrain.BEV)
    args = {"frequency": "daily", "start": "22:00", "end": "06:00"}
    state, outcome = execute(parked(vehicle), vehicle, "set-charge-schedule", args, T)
    assert isinstance(outcome, CommandResult)
    assert "sched-1" in outcome.effect
    assert [v["id"] for v in read(state, vehicle, "charge-chargetimers", T)["values"]] == ["sched-1"]
    same, outcome = execute(state, vehicle, "delete-charge-schedule", {"schedule_id": "sched-9"}, T)
    assert isinstance(outcome, CommandResult)
    assert "nothing" in outcome.effect
    assert same.schedules == state.schedules
    gone, _ = execute(state, vehicle, "delete-charge-schedule", {"schedule_id": "sched-1"}, T)
    assert read(gone, vehicle, "charge-chargetimers", T)["values"] == []


def test_a_lower_charge_limit_stops_charging_there() -> None:
    """Charging at 50 % at night with the limit set to 55 %: it charges up to 55 % and stops, FULLY_CHARGED."""
    vehicle = full_vehicle(Powertrain.BEV)
    t = night(vehicle)
    state = woken(initial_state(vehicle, SEED, t), vehicle, t)
    for code, setting in PLUGGED:
        state = set_value(state, vehicle, code, setting, t)
    state, _ = execute(state, vehicle, "set-charge-limit", {"percent": 55}, t)
    later = woken(state, vehicle, t + 4 * 3600)
    assert later.plugged
    assert value(later, vehicle, "tractionbattery-stateofcharge", later.at) == 55.0
    assert value(later, vehicle, "charge-detailedchargingstatus", later.at) == "FULLY_CHARGED"


REFUSALS: list[tuple[str, dict[str, Any] | None, tuple[tuple[str, Any], ...], str]] = [
    ("lock", None, (("closure-doors", {"values": [{"row": 1, "column": 1, "isOpen": True}]}),), "DOOR_OPEN"),
    ("lock", None, (("closure-reartrunk", True),), "DOOR_OPEN"),
    ("start-charge", None, (("charge-ischargingcableconnected", False),), "CHARGING_PLUG_NOT_CONNECTED"),
    ("start-charge", None, PLUGGED, "CHARGING_IN_PROGRESS"),
    ("start-charge", None, (*PLUGGED, ("charge-chargelimits", 50)), "FULLY_CHARGED"),
    ("stop-charge", None, (("charge-ischargingcableconnected", False),), "CHARGING_PLUG_NOT_CONNECTED"),
    ("stop-charge", None, (*PLUGGED, ("charge-ischarging", False)), "NOT_CHARGING"),
    ("close-charge-port", None, PLUGGED, "CHARGING_PLUG_CONNECTED"),
    ("unlock", None, (("lowvoltagebattery-stateofcharge", 30),), "LOW_BATTERY"),
    ("start-climate", None, (("tractionbattery-stateofcharge", 5),), "LOW_BATTERY"),
]


@pytest.mark.parametrize(("command", "params", "before", "code"), REFUSALS)
def test_a_command_the_state_forbids_is_refused(
    command: str, params: dict[str, Any] | None, before: tuple[tuple[str, Any], ...], code: str
) -> None:
    """Smartcar's VEHICLE_STATE code for the reason, and the vehicle otherwise unchanged (but awake)."""
    vehicle = full_vehicle(Powertrain.BEV)
    state = parked(vehicle, *before)
    after, outcome = execute(state, vehicle, command, params, T)
    assert refusal(outcome) == code
    assert problem(outcome).problem.status_code == 409
    assert (after.locked, after.open, after.plugged, after.charge_on, after.limit) == (
        state.locked,
        state.open,
        state.plugged,
        state.charge_on,
        state.limit,
    )


@pytest.mark.parametrize("command", ["lock", "unlock", "open-trunk", "open-frunk", "open-charge-port"])
def test_a_driving_vehicle_refuses_what_needs_it_parked(command: str) -> None:
    """Locking, unlocking and opening things while driving: IN_MOTION."""
    vehicle = full_vehicle(Powertrain.PHEV)
    moving = driving(vehicle)
    assert refusal(execute(moving, vehicle, command, None, moving.at)[1]) == "IN_MOTION"


def test_execute_refuses_what_the_gatekeeper_would_have() -> None:
    """An unknown command, one the vehicle cannot do, or bad parameters raise ValueError (not a vehicle answer)."""
    ice, state = full_vehicle(Powertrain.ICE), initial_state(full_vehicle(Powertrain.ICE), SEED, NOW)
    with pytest.raises(UnknownNameError):
        execute(state, ice, "launch", None, T)
    with pytest.raises(ValueError, match="not capable of start-charge"):
        execute(state, ice, "start-charge", None, T)
    with pytest.raises(ValueError, match="celsius"):
        execute(state, ice, "set-cabin-temperature", {"celsius": 99}, T)


def test_set_value_changes_what_derives_from_it() -> None:
    """Setting a stored quantity moves its derived signals: state of charge -> range, tires -> diagnostics."""
    vehicle = full_vehicle(Powertrain.BEV)
    state = parked(vehicle, ("tractionbattery-stateofcharge", 50))
    half = read(state, vehicle, "tractionbattery-range", T)["value"]
    full = parked(vehicle, ("tractionbattery-stateofcharge", {"value": 100, "unit": "percent"}))
    assert read(full, vehicle, "tractionbattery-range", T)["value"] == pytest.approx(2 * half, abs=0.2)
    flat = set_value(state, vehicle, "wheel-tires", {"values": [{"row": 1, "column": 0, "tirePressure": 150}]}, T)
    assert read(flat, vehicle, "wheel-tires", T)["values"][2]["tirePressure"] == 150
    assert read(flat, vehicle, "diagnostics-tirepressure", T)["status"] == "ALERT"
    assert "C0750" in [d["code"] for d in read(flat, vehicle, "diagnostics-dtclist", T)["values"]]
    alert = set_value(state, vehicle, "diagnostics-airbag", "ALERT", T)
    assert read(alert, vehicle, "diagnostics-airbag", T)["status"] == "ALERT"
    cleared = set_value(alert, vehicle, "diagnostics-airbag", {"status": "OK"}, T)
    assert read(cleared, vehicle, "diagnostics-airbag", T)["status"] == "OK"
    asleep = set_value(state, vehicle, "connectivitystatus-isasleep", True, T)
    assert value(asleep, vehicle, "connectivitystatus-isasleep", T) is True


BAD_VALUES: list[tuple[Powertrain, str, Any, str]] = [
    (Powertrain.BEV, "tractionbattery-stateofcharg", 50, "unknown signal"),
    (Powertrain.ICE, "tractionbattery-stateofcharge", 50, "not capable"),
    (Powertrain.BEV, "tractionbattery-range", 300, "derived"),
    (Powertrain.BEV, "tractionbattery-stateofcharge", 150, "from 0 to 100"),
    (Powertrain.BEV, "tractionbattery-stateofcharge", "half", "from 0 to 100"),
    (Powertrain.BEV, "tractionbattery-stateofcharge", True, "from 0 to 100"),
    (Powertrain.BEV, "tractionbattery-stateofcharge", {"level": 5}, "got keys"),
    (Powertrain.BEV, "closure-islocked", "yes", "true or false"),
    (Powertrain.BEV, "closure-doors", [{"row": 5, "column": 0, "isOpen": True}], "row and column"),
    (Powertrain.BEV, "closure-doors", "open", "values"),
    (Powertrain.BEV, "location-preciselocation", {"latitude": 10}, "shape"),
    (Powertrain.BEV, "location-preciselocation", {"latitude": 100, "longitude": 0}, "from -90 to 90"),
    (Powertrain.BEV, "charge-chargelimits", 20, "from 50 to 100"),
    (Powertrain.BEV, "diagnostics-abs", "BROKEN", "OK"),
    (Powertrain.BEV, "wheel-tires", {"values": [{"row": 0, "tirePressure": 200}]}, "shape"),
]


@pytest.mark.parametrize(("powertrain", "code", "setting", "message"), BAD_VALUES)
def test_set_value_refuses_with_one_line(powertrain: Powertrain, code: str, setting: Any, message: str) -> None:
    """Unknown, incapable or derived codes and values of the wrong shape: a ValueError saying which, on one line."""
    vehicle = full_vehicle(powertrain)
    with pytest.raises(ValueError, match=message) as raised:
        set_value(parked(vehicle), vehicle, code, setting, T)
    assert "\n" not in str(raised.value)


def test_set_value_refuses_what_a_vehicle_cannot_be() -> None:
    """Charging without a cable, closing the port on one: refused."""
    vehicle = full_vehicle(Powertrain.BEV)
    unplugged = parked(vehicle, ("charge-ischargingcableconnected", False))
    with pytest.raises(ValueError, match="not plugged in"):
        set_value(unplugged, vehicle, "charge-ischarging", True, T)
    with pytest.raises(ValueError, match="cannot close"):
        set_value(parked(vehicle, *PLUGGED), vehicle, "charge-ischargingportflapopen", False, T)


def test_settable_signals_are_catalog_signals_that_store_something() -> None:
    """settable() names only catalog signals; identity and derived values are not among them."""
    codes = {s.code for s in get_catalog().signals}
    assert set(settable()) <= codes
    assert "vehicleidentification-vin" not in settable()
    assert "tractionbattery-range" not in settable()
    assert "odometer-traveleddistance" in settable()
