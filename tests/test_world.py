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


def judge(target: str, *, own: bool = True, issued: float = 1.0, decided: float = 1.0) -> set[str]:
    return set(WORLD.intended(BEV, target, own_connection=own, issued_s=issued, decided_s=decided))


def test_precedence_without_changes() -> None:
    """Unknown target, foreign connection, missing capability, missing grant, then allowed: in that order."""
    assert judge("no-such-signal") == {Intended.REJECTED}
    assert judge("tractionbattery-stateofcharge", own=False) == {Intended.UNAUTHORIZED}
    assert judge("internalcombustionengine-fuellevel") == {Intended.VEHICLE_NOT_CAPABLE}
    assert judge("odometer-traveleddistance") == {Intended.PERMISSION_DENIED}
    assert judge("tractionbattery-stateofcharge") == {Intended.ALLOWED}


def test_a_revocation_is_judged_by_when_the_request_was_issued_and_decided() -> None:
    """Decided before the change: old outcome; issued before but decided after: either; issued well after: new."""
    target = "tractionbattery-stateofcharge"
    assert judge(target, issued=5.0, decided=5.1) == {Intended.ALLOWED}
    assert judge(target, issued=5.0, decided=12.0) == {Intended.ALLOWED, Intended.UNAUTHORIZED}
    assert judge(target, issued=10.5, decided=10.6) == {Intended.ALLOWED, Intended.UNAUTHORIZED}
    assert judge(target, issued=12.0, decided=12.1) == {Intended.UNAUTHORIZED}
