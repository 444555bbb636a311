"""What a scenario makes happen to a vehicle, pure: plugged in and out, out of coverage and back, asleep and woken,
setting off somewhere, each refused where the state model does not allow it; a vehicle that does not report its
connectivity loses it all the same."""

from __future__ import annotations

from dataclasses import replace

import pytest

from schemas.powertrain import Powertrain
from simulator.vehicles import initial_state, read_signal, set_value
from simulator.vehicles.scripted import drive_to, fall_asleep, go_offline, plug
from tests.vehicle_helpers import SEED, full_vehicle, night, read, refusal, value

CHARGING, LOCKED, ONLINE = "charge-ischarging", "closure-islocked", "connectivitystatus-isonline"
SOC = "tractionbattery-stateofcharge"


def test_plugging_in_starts_charging_and_unplugging_ends_it() -> None:
    """A BEV at 40 % plugged in: charging a minute later; unplugged: not charging."""
    vehicle = full_vehicle(Powertrain.BEV)
    t = night(vehicle)
    state = set_value(plug(initial_state(vehicle, SEED, t), vehicle, False, t), vehicle, SOC, 40, t)
    plugged = plug(state, vehicle, True, t + 60)
    assert value(plugged, vehicle, CHARGING, t + 120) is True
    unplugged = plug(plugged, vehicle, False, t + 180)
    assert value(unplugged, vehicle, CHARGING, t + 240) is False


def test_a_vehicle_without_a_traction_battery_cannot_be_plugged_in() -> None:
    vehicle = full_vehicle(Powertrain.ICE)
    t = night(vehicle)
    with pytest.raises(ValueError, match="has no traction battery"):
        plug(initial_state(vehicle, SEED, t), vehicle, True, t)


def test_offline_until_back_in_coverage_even_without_reporting_connectivity() -> None:
    """A vehicle lacking the connectivity signal goes offline all the same: reads answer UNREACHABLE until it is
    back, then its values again."""
    vehicle = full_vehicle(Powertrain.BEV)
    vehicle = replace(vehicle, capabilities=vehicle.capabilities - {ONLINE})
    t = night(vehicle)
    offline = go_offline(initial_state(vehicle, SEED, t), vehicle, True, t)
    assert refusal(read_signal(offline, vehicle, LOCKED, t + 60)) == "UNREACHABLE"
    back = go_offline(offline, vehicle, False, t + 120)
    assert read(back, vehicle, LOCKED, t + 180) == {"value": True}


def test_asleep_then_woken() -> None:
    """Asleep now (a read says so with its last value), awake again once woken."""
    vehicle = full_vehicle(Powertrain.PHEV)
    t = night(vehicle)
    state = fall_asleep(plug(initial_state(vehicle, SEED, t), vehicle, False, t), vehicle, False, t)
    asleep = fall_asleep(state, vehicle, True, t + 60)
    assert refusal(read_signal(asleep, vehicle, LOCKED, t + 90)) == "ASLEEP"
    woken = fall_asleep(asleep, vehicle, False, t + 120)
    assert value(woken, vehicle, LOCKED, t + 150) is True


def test_setting_off_drives_there_unplugged_and_not_twice() -> None:
    """A plugged-in BEV sets off: unplugged, driving; setting off again while driving, or to where it is, is refused."""
    vehicle = full_vehicle(Powertrain.BEV)
    t = night(vehicle)
    state = plug(initial_state(vehicle, SEED, t), vehicle, True, t)
    here = (state.lat / 1e6, state.lon / 1e6)
    with pytest.raises(ValueError, match="is there already"):
        drive_to(state, vehicle, *here, t + 30)
    driving = drive_to(state, vehicle, here[0] + 0.05, here[1] + 0.05, t + 60)
    assert driving.trip is not None
    assert not driving.plugged
    with pytest.raises(ValueError, match="is driving already"):
        drive_to(driving, vehicle, here[0], here[1], t + 120)
