"""Every catalog signal, on vehicles of every powertrain that can have it, reads in the catalog's shape, unit, enum."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pydantic import ValidationError

from schemas.catalog import get_catalog
from schemas.powertrain import Powertrain
from schemas.vehicle import Vehicle
from simulator.vehicles import SignalReading, VehicleState, advance, execute, initial_state, read_signal, set_value
from simulator.vehicles.commands import HANDLERS
from simulator.vehicles.overrides import check_setters
from simulator.vehicles.read import body_at, body_builders
from simulator.vehicles.signal_map import SignalSim, diagnostics, signal_map
from tests.signal_bodies import body_problems
from tests.vehicle_helpers import NOW, SEED, full_vehicle


def _situations(vehicle: Vehicle) -> list[VehicleState]:
    """The vehicle parked as its life left it, driving, and charging with everything open, alerting and scheduled."""
    state = initial_state(vehicle, SEED, NOW)
    situations = [state]
    t = NOW
    while not state.driving:
        t += 600
        state = advance(state, vehicle, t, SEED)
    situations.append(state)
    busy = advance(state, vehicle, t + 86_400, SEED)
    t += 86_400
    settings = [
        ("location-preciselocation", {"latitude": 52.52, "longitude": 13.405}),
        ("closure-doors", {"values": [{"row": 1, "column": 0, "isOpen": True}]}),
        ("closure-windows", {"values": [{"row": 0, "column": 1, "isOpen": True}]}),
        ("wheel-tires", {"values": [{"row": 0, "column": 0, "tirePressure": 150}]}),
        ("diagnostics-abs", "ALERT"),
        ("tractionbattery-stateofcharge", 35),
        ("charge-ischargingcableconnected", True),
        ("hvac-iscabinhvacactive", True),
        ("hvac-isfrontdefrosteractive", True),
    ]
    for code, setting in settings:
        if code in vehicle.capabilities:
            busy = set_value(busy, vehicle, code, setting, t)
    if "set-charge-schedule" in vehicle.capabilities:
        args = {"frequency": "weekly", "start": "22:00", "end": "06:00"}
        busy, _ = execute(busy, vehicle, "set-charge-schedule", args, t)
    situations.append(advance(busy, vehicle, t + 600, SEED))
    return situations


@pytest.mark.parametrize("powertrain", list(Powertrain))
def test_every_signal_body_matches_the_catalog(powertrain: Powertrain) -> None:
    """Parked, driving, and charging with things open: each capable signal's body passes the catalog's validator."""
    catalog = get_catalog()
    vehicle = full_vehicle(powertrain)
    codes = sorted(c for c in vehicle.capabilities if c in body_builders())
    possible = [s for s in catalog.signals if powertrain in s.powertrains or powertrain is Powertrain.UNKNOWN]
    assert len(codes) == len(possible)
    for state in _situations(vehicle):
        for code in codes:
            body = body_at(state, vehicle, code, state.at)
            assert body_problems(catalog.signal(code), body) == [], (code, body)
            result = read_signal(state, vehicle, code, state.at)
            reading = result if isinstance(result, SignalReading) else result.stale
            if reading is not None:
                assert body_problems(catalog.signal(code), reading.body) == [], (code, result)


def test_every_powertrain_reads_its_own_signals() -> None:
    """Every catalog signal is checked on at least one vehicle of each physical powertrain that can have it."""
    catalog = get_catalog()
    for signal in catalog.signals:
        assert signal.powertrains, signal.code
        for powertrain in signal.powertrains:
            assert signal.code in full_vehicle(powertrain).capabilities


def test_the_signal_map_covers_the_catalog_with_real_builders() -> None:
    """signals.toml: one entry per catalog signal, each naming an existing builder (and setter); one handler per
    command; a trouble code for every status diagnostic and only for those."""
    catalog = get_catalog()
    assert set(signal_map()) == {s.code for s in catalog.signals}
    assert set(body_builders()) == {s.code for s in catalog.signals}
    check_setters()
    assert set(HANDLERS) == {c.name for c in catalog.commands}
    status_diagnostics = {s.code for s in catalog.signals if s.group == "diagnostics" and s.shape == "object"}
    assert {sim.code for sim in diagnostics()} == status_diagnostics
    assert len({sim.dtc for sim in diagnostics()}) == len(status_diagnostics)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"value": "soc_pct", "body": "doors"}, "exactly one of"),
        ({"body": "closure"}, "closure"),
        ({"body": "diagnostic", "dtc": "P0001"}, "dtc"),
        ({"value": "soc_pct", "source": "satellite"}, "source"),
        ({"value": "soc_pct", "colour": "red"}, "colour"),
    ],
)
def test_a_bad_signal_map_entry_is_refused(entry: dict[str, object], message: str) -> None:
    """An entry that contradicts itself or names an unknown field fails validation, saying which."""
    with pytest.raises(ValidationError, match=message):
        SignalSim.model_validate({"code": "closure-doors", **entry})


def test_the_validator_refuses_wrong_bodies() -> None:
    """Wrong unit, enum value, type or a missing key are each reported: the shape test cannot pass by not looking."""
    catalog = get_catalog()
    soc, doors = catalog.signal("tractionbattery-stateofcharge"), catalog.signal("closure-doors")
    assert body_problems(soc, {"value": 80.0, "unit": "percent"}) == []
    assert body_problems(soc, {"value": 80.0, "unit": "kilometers"}) != []
    assert body_problems(soc, {"value": "80", "unit": "percent"}) != []
    assert body_problems(catalog.signal("transmission-gearstate"), {"value": "FLYING"}) != []
    assert body_problems(catalog.signal("diagnostics-abs"), {"status": "MAYBE", "description": ""}) != []
    good_doors = {"values": [{"row": 0, "column": 0, "isOpen": False}], "rowCount": 1, "columnCount": 1}
    assert body_problems(doors, good_doors) == []
    assert body_problems(doors, {**good_doors, "values": [{"row": 0, "isOpen": False}]}) != []
    assert body_problems(doors, replace_key(good_doors, "rowCount")) != []
    assert body_problems(catalog.signal("charge-chargerecords"), {"values": [{"id": "x"}]}) != []
    assert body_problems(catalog.signal("vehicleidentification-vin"), {"value": float("nan")}) != []


def replace_key(body: dict[str, object], key: str) -> dict[str, object]:
    return {k: v for k, v in body.items() if k != key}


def test_a_vehicle_state_is_immutable() -> None:
    """States are values: reading does not change them, and replace() makes a new one."""
    vehicle = full_vehicle(Powertrain.BEV)
    state = initial_state(vehicle, SEED, NOW)
    before = state.encode()
    read_signal(state, vehicle, "tractionbattery-stateofcharge", NOW + 3600)
    assert state.encode() == before
    assert replace(state, limit=50) != state
