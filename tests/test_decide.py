"""`decide()`: every row of the precedence table, their combinations, and the error objects."""

from __future__ import annotations

import itertools

import pytest

from devtools.builders import make_connection, make_request, make_vehicle
from schemas.connection import ConnectionStatus
from schemas.decision import Decision, decide
from schemas.powertrain import Powertrain
from schemas.problems import Outcome, SmartcarError

SOC = "tractionbattery-stateofcharge"  # read_battery, BEV and PHEV only
FUEL = "internalcombustionengine-fuellevel"  # read_fuel, not on a BEV


def error_of(decision: Decision) -> SmartcarError:
    error = decision.error("req-1")
    assert error is not None
    assert error.request_id == "req-1"
    return error


def test_allowed_when_granted_and_capable() -> None:
    """A granted permission on a capable vehicle is ALLOWED, without an error."""
    decision = decide(make_request(SOC), make_connection("read_battery"), make_vehicle())
    assert decision.outcome is Outcome.ALLOWED
    assert decision.permission == "read_battery"
    assert decision.error("req-1") is None


def test_unknown_target_is_rejected() -> None:
    """A target the catalog does not know is a malformed request: REJECTED with VALIDATION/null (Smartcar's code for
    it; PARAMETER is for bad arguments), permission null."""
    decision = decide(make_request("tractionbattery-charm"), make_connection("read_battery"), make_vehicle())
    assert decision.outcome is Outcome.REJECTED
    assert decision.permission is None
    assert (error_of(decision).type, error_of(decision).code, error_of(decision).status_code) == (
        "VALIDATION",
        None,
        400,
    )
    assert "tractionbattery-charm" in error_of(decision).description


def test_signal_name_used_as_command_is_rejected() -> None:
    """Kinds have separate namespaces: a signal code sent as a command is unknown."""
    decision = decide(make_request(SOC, kind="command"), make_connection("read_battery"), make_vehicle())
    assert decision.outcome is Outcome.REJECTED


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"percent": 120}, "percent must be at most 100, got 120"),
        ({"percent": 49}, "percent must be at least 50, got 49"),
        ({"percent": 80.5}, "percent must be an integer"),
        ({"percent": True}, "percent must be an integer"),
        ({}, "needs parameter 'percent'"),
        ({"percent": 80, "force": True}, "takes no parameter 'force'"),
    ],
)
def test_bad_command_parameters_are_rejected(params: dict[str, object], fragment: str) -> None:
    """Command arguments are checked against the catalog's bounds before anything else."""
    request = make_request("set-charge-limit", kind="command", params=params)
    decision = decide(request, make_connection("control_charge"), make_vehicle())
    assert decision.outcome is Outcome.REJECTED
    assert decision.permission == "control_charge"
    assert fragment in error_of(decision).description


def test_valid_command_parameters_pass() -> None:
    """In-bound arguments reach the access checks."""
    request = make_request("set-charge-limit", kind="command", params={"percent": 80})
    assert decide(request, make_connection("control_charge"), make_vehicle()).outcome is Outcome.ALLOWED


def test_signal_with_parameters_is_rejected() -> None:
    """Signals take no arguments."""
    request = make_request(SOC, params={"unit": "miles"})
    assert decide(request, make_connection("read_battery"), make_vehicle()).outcome is Outcome.REJECTED


@pytest.mark.parametrize(
    "case",
    ["unknown connection", "revoked", "other vehicle's connection", "unknown vehicle", "connection id mismatch"],
)
def test_unauthorized_fails_closed(case: str) -> None:
    """No connection, a revoked one, or one for another vehicle: UNAUTHORIZED with REAUTHENTICATE."""
    connection = {
        "unknown connection": None,
        "revoked": make_connection("read_battery", status=ConnectionStatus.REVOKED),
        "other vehicle's connection": make_connection("read_battery", vehicle_id="veh-2"),
        "unknown vehicle": make_connection("read_battery"),
        "connection id mismatch": make_connection("read_battery", connection_id="conn-9"),
    }[case]
    vehicle = None if case == "unknown vehicle" else make_vehicle()
    decision = decide(make_request(SOC), connection, vehicle)
    assert decision.outcome is Outcome.UNAUTHORIZED
    assert (error_of(decision).type, error_of(decision).status_code) == ("AUTHENTICATION", 401)
    assert error_of(decision).resolution.type == "REAUTHENTICATE"


def test_powertrain_that_cannot_have_the_signal_is_not_capable() -> None:
    """A BEV has no fuel tank: VEHICLE_NOT_CAPABLE even though read_fuel is granted."""
    decision = decide(make_request(FUEL), make_connection("read_fuel"), make_vehicle(Powertrain.BEV))
    assert decision.outcome is Outcome.VEHICLE_NOT_CAPABLE
    assert (error_of(decision).type, error_of(decision).code, error_of(decision).status_code) == (
        "COMPATIBILITY",
        "VEHICLE_NOT_CAPABLE",
        501,
    )
    assert error_of(decision).resolution.type is None
    assert error_of(decision).suggested_user_message == "Your car is unable to perform this request."


def test_capability_set_can_lack_what_the_powertrain_allows() -> None:
    """A vehicle without tire pressure sensors is not capable of wheel-tires."""
    decision = decide(make_request("wheel-tires"), make_connection("read_tires"), make_vehicle(lacks=["wheel-tires"]))
    assert decision.outcome is Outcome.VEHICLE_NOT_CAPABLE


def test_unknown_powertrain_follows_its_capability_set() -> None:
    """An UNKNOWN powertrain rules nothing out physically; its capability set decides."""
    vehicle = make_vehicle(Powertrain.UNKNOWN)
    assert decide(make_request("odometer-traveleddistance"), make_connection("read_odometer"), vehicle).outcome is (
        Outcome.ALLOWED
    )
    assert decide(make_request(FUEL), make_connection("read_fuel"), vehicle).outcome is Outcome.VEHICLE_NOT_CAPABLE


def test_missing_grant_is_permission_denied() -> None:
    """A capable vehicle without the grant: PERMISSION_DENIED naming the permission, REAUTHENTICATE."""
    decision = decide(make_request(SOC), make_connection("read_odometer"), make_vehicle())
    assert decision.outcome is Outcome.PERMISSION_DENIED
    assert decision.permission == "read_battery"
    error = error_of(decision)
    assert (error.type, error.code, error.status_code, error.resolution.type) == (
        "PERMISSION",
        None,
        403,
        "REAUTHENTICATE",
    )
    assert "read_battery" in error.description
    assert error.doc_url.startswith("https://smartcar.com/docs/errors/api-errors/permission-errors")


def test_scopes_carried_by_the_request_are_ignored() -> None:
    """A request that claims its own scopes is still judged by the connection's grant."""
    request = make_request(SOC, scopes=["read_battery"], permissions="read_battery")
    assert decide(request, make_connection("read_odometer"), make_vehicle()).outcome is Outcome.PERMISSION_DENIED


# Each flag makes one row of the table apply; the first applicable row in precedence order wins.
ROWS = ["rejected", "unauthorized", "not_capable", "denied"]
EXPECTED = [Outcome.REJECTED, Outcome.UNAUTHORIZED, Outcome.VEHICLE_NOT_CAPABLE, Outcome.PERMISSION_DENIED]


@pytest.mark.parametrize("flags", list(itertools.product([False, True], repeat=4)), ids=str)
def test_precedence_over_every_combination(flags: tuple[bool, bool, bool, bool]) -> None:
    """For each of the 16 combinations of failing checks, the highest-precedence one is the outcome."""
    rejected, unauthorized, not_capable, denied = flags
    # set-charge-limit needs control_charge and is BEV/PHEV only.
    params = {"percent": 150 if rejected else 80}
    request = make_request("set-charge-limit", kind="command", params=params)
    connection = make_connection(
        *(() if denied else ("control_charge",)),
        "read_odometer",
        status=ConnectionStatus.REVOKED if unauthorized else ConnectionStatus.ACTIVE,
    )
    vehicle = make_vehicle(Powertrain.ICE if not_capable else Powertrain.BEV)
    expected = next((outcome for flag, outcome in zip(flags, EXPECTED, strict=True) if flag), Outcome.ALLOWED)
    assert decide(request, connection, vehicle).outcome is expected
