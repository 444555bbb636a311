"""The simulator's own judgement of each request: the precedence table, and owners' changes over time."""

from __future__ import annotations

from schemas.powertrain import Powertrain
from simulator.world import Grant, Intended, OwnerChange, SimVehicle, World

BEV = SimVehicle("v1", "Tesla", Powertrain.BEV, 0, "c1", Grant(frozenset({"read_battery"})))
WORLD = World(
    vehicles=(BEV,),
    profiles=(frozenset({"tractionbattery-stateofcharge", "odometer-traveleddistance"}),),
    selected_signals=("tractionbattery-stateofcharge",),
    selected_commands=(),
    changes=(OwnerChange(10.0, "c1", "revoke", Grant(frozenset({"read_battery"}), active=False)),),
)


def judge(
    target: str, *, own: bool = True, issued: float = 1.0, decided: float = 1.0, applied: tuple[float, float] | None
) -> set[str]:
    return set(WORLD.intended(BEV, target, own_connection=own, issued_s=issued, decided_s=decided, applied=applied))


def test_precedence_without_changes() -> None:
    """Unknown target, foreign connection, missing capability, missing grant, then allowed: in that order."""
    assert judge("no-such-signal", applied=None) == {Intended.REJECTED}
    assert judge("tractionbattery-stateofcharge", own=False, applied=None) == {Intended.UNAUTHORIZED}
    assert judge("internalcombustionengine-fuellevel", applied=None) == {Intended.VEHICLE_NOT_CAPABLE}
    assert judge("odometer-traveleddistance", applied=None) == {Intended.PERMISSION_DENIED}
    assert judge("tractionbattery-stateofcharge", applied=None) == {Intended.ALLOWED}


def test_a_revocation_is_judged_by_when_it_was_made_and_the_request_issued_and_decided() -> None:
    """Decided before the change: old outcome; issued before but decided after: either; issued well after: new."""
    target = "tractionbattery-stateofcharge"
    made = (10.0, 10.01)  # the revoke call's start and end, seconds into the load
    assert judge(target, issued=5.0, decided=5.1, applied=made) == {Intended.ALLOWED}
    assert judge(target, issued=5.0, decided=12.0, applied=made) == {Intended.ALLOWED, Intended.UNAUTHORIZED}
    assert judge(target, issued=10.5, decided=10.6, applied=made) == {Intended.ALLOWED, Intended.UNAUTHORIZED}
    assert judge(target, issued=12.0, decided=12.1, applied=made) == {Intended.UNAUTHORIZED}


def test_a_change_not_made_yet_does_not_count_however_late_its_schedule() -> None:
    """The owner's change ran late (scheduled at 10 s, not made by 30 s): the old outcome is still the only one."""
    assert judge("tractionbattery-stateofcharge", issued=30.0, decided=30.1, applied=None) == {Intended.ALLOWED}
    assert judge("tractionbattery-stateofcharge", issued=30.0, decided=30.1, applied=(29.5, float("inf"))) == {
        Intended.ALLOWED,
        Intended.UNAUTHORIZED,
    }
