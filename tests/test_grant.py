"""The Connect grant screen and Connection Filters."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from schemas.catalog import get_catalog
from schemas.errors import AccessDeniedError, VehicleIncompatibleError
from schemas.grant import ConnectionFilters, FilterPowertrain, grant
from schemas.permissions import PermissionSet
from schemas.powertrain import Powertrain
from schemas.scope import parse_scope

NAMES = list(get_catalog().permission_names)


def test_owner_unchecks_an_optional_permission() -> None:
    """Unchecking an optional permission removes it; the rest stay as requested."""
    requested = parse_scope("required:read_odometer read_location read_battery")
    granted = grant(requested, unchecked=["read_location"])
    assert granted == parse_scope("required:read_odometer read_battery")


def test_nothing_unchecked_grants_everything_requested() -> None:
    """With no unchecks the grant is the request."""
    requested = parse_scope("required:read_odometer read_location")
    assert grant(requested) == requested


def test_required_permission_cannot_be_unchecked() -> None:
    """A required permission is locked on the screen: unchecking it is access_denied, naming it."""
    with pytest.raises(AccessDeniedError, match="'read_odometer' is required") as raised:
        grant(parse_scope("required:read_odometer read_location"), unchecked=["read_odometer"])
    assert raised.value.code == "access_denied"


def test_at_least_one_permission_must_remain() -> None:
    """Unchecking every optional permission leaves nothing: access_denied."""
    with pytest.raises(AccessDeniedError, match="at least one permission"):
        grant(parse_scope("read_odometer read_location"), unchecked=["read_odometer", "read_location"])


def test_cannot_uncheck_what_was_not_requested() -> None:
    """Only permissions on the screen can be unchecked."""
    with pytest.raises(AccessDeniedError, match="'read_vin' was not requested"):
        grant(parse_scope("read_odometer read_location"), unchecked=["read_vin"])


@given(
    st.dictionaries(st.sampled_from(NAMES), st.booleans(), min_size=1),
    st.sets(st.sampled_from(NAMES)),
)
def test_grant_screen_invariants(requested_flags: dict[str, bool], unchecked: set[str]) -> None:
    """A completed grant keeps every required permission, adds nothing, drops exactly the unchecks."""
    requested = PermissionSet.of(requested_flags.items())
    assume(unchecked <= set(requested))
    try:
        granted = grant(requested, unchecked)
    except AccessDeniedError:
        # Refused exactly when a required one was unchecked or nothing would remain.
        assert unchecked & set(requested.required_names) or unchecked == set(requested)
        return
    assert set(granted) == set(requested) - unchecked
    assert granted.required_names == requested.required_names
    assert len(granted) >= 1


@pytest.mark.parametrize(
    ("filters", "admitted"),
    [
        (ConnectionFilters(), {"ICE", "HEV", "PHEV", "BEV", "UNKNOWN"}),
        (ConnectionFilters(powertrains=frozenset({FilterPowertrain.ICE})), {"ICE", "HEV", "UNKNOWN"}),
        (ConnectionFilters(powertrains=frozenset({FilterPowertrain.BEV}), allow_unknown=False), {"BEV"}),
        (
            ConnectionFilters(powertrains=frozenset({FilterPowertrain.BEV, FilterPowertrain.PHEV})),
            {"BEV", "PHEV", "UNKNOWN"},
        ),
        (ConnectionFilters(allow_unknown=False), {"ICE", "HEV", "PHEV", "BEV"}),
    ],
)
def test_connection_filters(filters: ConnectionFilters, admitted: set[str]) -> None:
    """ICE covers HEV; no powertrain selected means no filter; UNKNOWN follows allow_unknown."""
    assert {p.value for p in Powertrain if filters.admits(p)} == admitted


def test_filtered_out_vehicle_is_vehicle_incompatible() -> None:
    """check() raises Connect's vehicle_incompatible naming the powertrain."""
    filters = ConnectionFilters(powertrains=frozenset({FilterPowertrain.BEV}))
    with pytest.raises(VehicleIncompatibleError, match="powertrain is HEV") as raised:
        filters.check(Powertrain.HEV)
    assert raised.value.code == "vehicle_incompatible"
    filters.check(Powertrain.BEV)
