"""The fault model, pure: error names, what a fault may say, how the faults of a vehicle combine on a request, windows
in simulated time, the bound per vehicle, and the encoding stored in Redis."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from simulator.vehicles.faults import MAX_FAULTS, Fault, FaultSet, error_name, inject

ODOMETER = "odometer-traveleddistance"


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("ASLEEP", "VEHICLE_STATE/ASLEEP"),
        ("no_response", "UPSTREAM/NO_RESPONSE"),
        ("UPSTREAM/RATE_LIMIT", "UPSTREAM/RATE_LIMIT"),
        ("VEHICLE", "RATE_LIMIT/VEHICLE"),
        ("RATE_LIMIT/VEHICLE", "RATE_LIMIT/VEHICLE"),
    ],
)
def test_error_names_are_made_canonical(given: str, canonical: str) -> None:
    """A bare code or TYPE/CODE, any case, names one of Smartcar's injectable errors."""
    assert error_name(given) == canonical


@pytest.mark.parametrize(
    ("given", "fragment"),
    [("RATE_LIMIT", "ambiguous: say UPSTREAM/RATE_LIMIT or RATE_LIMIT/VEHICLE"), ("SLEEPY", "unknown error 'SLEEPY'")],
)
def test_unknown_and_ambiguous_error_names_are_refused(given: str, fragment: str) -> None:
    """RATE_LIMIT is an UPSTREAM code and an error type: refused, naming both; an unknown name lists the known."""
    with pytest.raises(ValueError, match=fragment):
        error_name(given)


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({}, "needs an error, a delay"),
        ({"error": "ASLEEP", "mode": "probability", "probability": 1.5}, "less than or equal to 1"),
        ({"error": "ASLEEP", "mode": "next", "remaining": 0}, "greater than or equal to 1"),
        ({"error": "ASLEEP", "mode": "next"}, "next N"),
        ({"error": "ASLEEP", "retry_after_s": 5}, "retry_after_s goes with RATE_LIMIT/VEHICLE only"),
        ({"error": "ASLEEP", "start": 10.0, "until": 10.0}, "end after it starts"),
        ({"error": "ASLEEP", "colour": "red"}, "Extra inputs"),
    ],
)
def test_a_fault_that_contradicts_itself_is_refused(fields: dict[str, object], fragment: str) -> None:
    """Each inconsistency is refused with a message saying which."""
    with pytest.raises(ValidationError, match=fragment):
        Fault.model_validate(fields)


def test_a_rate_limit_fault_says_when_to_retry_by_default() -> None:
    """RATE_LIMIT/VEHICLE without retry_after_s gets the default; one that says keeps it."""
    assert Fault(error="VEHICLE").retry_after_s == 60
    assert Fault(error="RATE_LIMIT/VEHICLE", retry_after_s=5).retry_after_s == 5


def test_faults_combine_first_error_longest_delay_and_every_next_counts() -> None:
    """Of the faults that fire, the first added gives the error, the longest delay wins, and each `next` fault that
    fired counts the request; a fault on another target or outside its window does nothing."""
    faults = FaultSet()
    for fault in (
        Fault(target="lock", error="DOOR_OPEN"),
        Fault(error="UPSTREAM/KNOWN_ISSUE", mode="next", remaining=2, delay_ms=200),
        Fault(error="ASLEEP", delay_ms=500, start=100.0, until=200.0),
        Fault(delay_ms=300, mode="next", remaining=1),
    ):
        faults = faults.added(fault, 0)
    early = inject(faults, ODOMETER, "r1", 50.0, 0)
    assert (early.error, early.delay_ms) == ("UPSTREAM/KNOWN_ISSUE", 300)
    assert early.faults is not None
    assert [(f.id, f.remaining) for f in early.faults.faults] == [("f1", None), ("f2", 1), ("f3", None)]
    later = inject(early.faults, ODOMETER, "r2", 150.0, 0)
    assert (later.error, later.delay_ms) == ("UPSTREAM/KNOWN_ISSUE", 500)
    assert later.faults is not None
    assert [f.id for f in later.faults.faults] == ["f1", "f3"]
    assert inject(later.faults, ODOMETER, "r3", 250.0, 0).error is None  # f3's window has passed
    assert inject(later.faults, "lock", "r4", 250.0, 0).error == "VEHICLE_STATE/DOOR_OPEN"


def test_a_probability_draw_depends_on_request_fault_and_seed_only() -> None:
    """The same request fires the same way every time; over many requests the share is near the probability."""
    faults = FaultSet().added(Fault(error="ASLEEP", mode="probability", probability=0.3), 0)
    fired = [inject(faults, ODOMETER, f"r{n}", 0.0, 7).error is not None for n in range(2000)]
    again = [inject(faults, ODOMETER, f"r{n}", 999.0, 7).error is not None for n in range(2000)]
    other_seed = [inject(faults, ODOMETER, f"r{n}", 0.0, 8).error is not None for n in range(2000)]
    assert fired == again
    assert fired != other_seed
    assert 0.25 < sum(fired) / len(fired) < 0.35


def test_a_vehicle_holds_a_bounded_number_of_faults_and_ids_are_not_reused() -> None:
    """MAX_FAULTS live faults at most (spent ones make room); a cleared fault's id is not given again; clearing an
    id the vehicle does not hold is refused, naming it."""
    faults = FaultSet()
    for _ in range(MAX_FAULTS):
        faults = faults.added(Fault(error="ASLEEP"), 0)
    with pytest.raises(ValueError, match=f"at most {MAX_FAULTS} faults"):
        faults.added(Fault(error="ASLEEP"), 0)
    cleared = faults.cleared(["f3"], 0)
    assert cleared.added(Fault(error="ASLEEP"), 0).faults[-1].id == f"f{MAX_FAULTS + 1}"
    with pytest.raises(ValueError, match="no fault f3 on this vehicle"):
        cleared.cleared(["f3"], 0)
    windowed = FaultSet().added(Fault(error="ASLEEP", until=10.0), 0)
    assert windowed.added(Fault(error="ASLEEP"), 20.0).faults[0].id == "f2"  # the expired one was dropped


def test_a_fault_set_survives_its_encoding() -> None:
    """What is stored in the vehicle's hash decodes to the same faults and count."""
    faults = FaultSet().added(Fault(error="VEHICLE", target="lock", mode="next", remaining=3, start=5.0), 0)
    faults = faults.added(Fault(delay_ms=250, mode="probability", probability=0.5), 0)
    assert FaultSet.decode(faults.encode()) == faults
    assert FaultSet.decode(None) == FaultSet()
    with pytest.raises(ValueError, match="not an encoded fault set"):
        FaultSet.decode(b'{"faults": 3}')
