"""evolve(), the model's fast dataclasses.replace(): the same copy, for any changes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields, replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.powertrain import Powertrain
from simulator.vehicles import initial_state
from simulator.vehicles.evolve import evolve
from simulator.vehicles.state import Trip, VehicleState
from tests.vehicle_helpers import NOW, SEED, full_vehicle

STATE = initial_state(full_vehicle(Powertrain.PHEV), SEED, NOW)
VALUES = st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), st.booleans(), st.tuples(st.integers()))


@given(st.dictionaries(st.sampled_from([f.name for f in fields(VehicleState)]), VALUES, max_size=6))
def test_evolve_is_replace(changes: dict[str, Any]) -> None:
    """The same fields as replace() gives, for any set of changes; the original is left as it was."""
    before = dataclasses.astuple(STATE)
    evolved = evolve(STATE, **changes)
    assert type(evolved) is VehicleState
    assert dataclasses.astuple(evolved) == dataclasses.astuple(replace(STATE, **changes))
    assert dataclasses.astuple(STATE) == before
    assert evolved is not STATE


def test_evolve_copies_other_slotted_records() -> None:
    trip = Trip(1, 2, 3.0, 4, 5, 6, 7)
    assert evolve(trip, meters=40, kph=70) == Trip(1, 2, 3.0, 40, 5, 6, 70)
    assert evolve(trip) == trip


def test_evolve_refuses_what_replace_refuses() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'socc'"):
        evolve(STATE, socc=1)  # type: ignore[call-arg]  # (mypy refuses it too, as it does for replace())


def test_evolve_refuses_classes_it_cannot_copy_as_replace_would() -> None:
    """Only slotted dataclasses without __post_init__: for those, a field-by-field copy is what replace() does."""

    @dataclass(frozen=True)
    class Plain:
        x: int

    @dataclass(frozen=True, slots=True)
    class Checked:
        x: int

        def __post_init__(self) -> None:
            pass

    for obj in (Plain(1), Checked(1)):
        with pytest.raises(TypeError, match="evolve"):
            evolve(obj, x=2)
