"""The dashboard's pure parts, without a server: session signing, the CSRF token, the selection, the diff of two
configs, the Connect URL, the fleet's shares."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

import pytest

from schemas.access import VehicleAccessConfig
from schemas.access_diff import diff_configs
from schemas.application import Application, AppMode
from schemas.grant import ConnectionFilters, FilterPowertrain
from schemas.powertrain import Powertrain
from services.http.dashboard.connect_url import connect_url
from services.http.dashboard.filters import fleet_shares
from services.http.dashboard.selection import Selection, permissions_panel
from services.http.dashboard.session import csrf_token, sign_session, verify_session

SECRET = b"s" * 32
APP = Application(id="acme.app-1", name="Acme", mode=AppMode.LIVE, redirect_uris=("https://acme.test/cb",),
                  created_at=None)  # fmt: skip


def test_session_round_trip_keeps_the_app_until_expiry() -> None:
    """A signed session verifies to its app (ids with dots too) before its expiry, and not at or after it."""
    value = sign_session(SECRET, APP.id, 1000)
    session = verify_session(SECRET, value, 999)
    assert session is not None
    assert (session.app_id, session.expires_at) == (APP.id, 1000)
    assert verify_session(SECRET, value, 1000) is None


@pytest.mark.parametrize(
    "tamper",
    [
        lambda v: v.replace("acme.app-1", "other"),  # another app id under the same signature
        lambda v: v.replace(".1000.", ".9999."),  # a later expiry
        lambda v: v[:-2] + ("AA" if not v.endswith("AA") else "BB"),  # a changed signature
        lambda _: "",
        lambda _: "no-dots",
    ],
)
def test_tampered_session_is_refused(tamper: Callable[[str], str]) -> None:
    """Any change to the cookie, its app, its expiry or its signature, makes it no session."""
    value = sign_session(SECRET, APP.id, 1000)
    assert verify_session(SECRET, tamper(value), 0) is None


def test_session_of_another_secret_is_refused() -> None:
    """A cookie signed with another server secret does not verify."""
    assert verify_session(b"t" * 32, sign_session(SECRET, APP.id, 1000), 0) is None


def test_csrf_token_is_bound_to_the_session() -> None:
    """Two sessions of the same app have different CSRF tokens; one session's is stable."""
    one = verify_session(SECRET, sign_session(SECRET, APP.id, 1000), 0)
    two = verify_session(SECRET, sign_session(SECRET, APP.id, 1000), 0)
    assert one is not None
    assert two is not None
    assert csrf_token(SECRET, one) == csrf_token(SECRET, one)
    assert csrf_token(SECRET, one) != csrf_token(SECRET, two)


def test_session_repr_hides_the_cookie() -> None:
    """A printed session names its app, never the cookie value (a bearer credential)."""
    value = sign_session(SECRET, APP.id, 1000)
    session = verify_session(SECRET, value, 0)
    assert value not in repr(session)


def test_selection_ignores_required_on_unselected_and_round_trips_a_config() -> None:
    """Required on an unticked item is dropped; a config's selection gives back the same config."""
    fields = [("signal", "odometer-traveleddistance"), ("required", "lock"), ("command", "unlock"), ("csrf", "x")]
    selection = Selection.from_fields(fields)
    assert selection.required == frozenset()
    config = VehicleAccessConfig.select(signals=["odometer-traveleddistance"], commands=["lock"], required=["lock"])
    assert Selection.of_config(config).config() == config


def test_panel_marks_what_the_app_may_not_request() -> None:
    """The panel lists permissions the app is not enabled for (Connect would refuse them)."""
    limited = Application(id="lim", name="Lim", created_at=None, permissions=("read_odometer",))
    selection = Selection(signals=("odometer-traveleddistance", "location-preciselocation"))
    panel = permissions_panel(selection, limited)
    assert panel["not_allowed"] == ["read_location"]
    assert panel["scope"] == "read_location read_odometer"


def test_diff_of_two_configs() -> None:
    """Selections added, removed, made required or optional, and the permissions' own changes."""
    old = VehicleAccessConfig.select(signals=["odometer-traveleddistance", "charge-ischarging"], commands=["lock"],
                                     required=["charge-ischarging"])  # fmt: skip
    new = VehicleAccessConfig.select(signals=["charge-ischarging", "location-preciselocation"], commands=["lock"],
                                     required=["lock"])  # fmt: skip
    diff = diff_configs(old, new)
    assert (diff.signals.added, diff.signals.removed) == (["location-preciselocation"], ["odometer-traveleddistance"])
    assert (diff.signals.made_optional, diff.commands.made_required) == (["charge-ischarging"], ["lock"])
    assert (diff.permissions.added, diff.permissions.removed) == (["read_location"], ["read_odometer"])
    assert (diff.permissions.made_optional, diff.permissions.made_required) == (["read_charge"], ["control_security"])
    assert diff_configs(new, new).empty


def test_connect_url_has_the_sdks_parameters_in_its_order() -> None:
    """Like the SDK's get_auth_url: response_type, client_id, approval_prompt, mode, redirect_uri, then scope."""
    url = connect_url("http://127.0.0.1:8000/", APP, "required:read_vin read_odometer")
    parts = urlsplit(url)
    assert parts.path == "/oauth/authorize"
    assert parse_qsl(parts.query) == [
        ("response_type", "code"), ("client_id", APP.id), ("approval_prompt", "auto"), ("mode", "live"),
        ("redirect_uri", "https://acme.test/cb"), ("scope", "required:read_vin read_odometer"),
    ]  # fmt: skip
    assert "scope" not in connect_url("http://x", APP)


def test_fleet_shares_follow_the_filters_rule() -> None:
    """ICE covers HEV; no powertrain ticked admits every known one; UNKNOWN only when allowed; no fleet is 0 %."""
    counts = Counter({Powertrain.ICE: 2, Powertrain.HEV: 2, Powertrain.BEV: 4, Powertrain.UNKNOWN: 2})
    only_bev = fleet_shares(
        counts, ConnectionFilters(powertrains=frozenset({FilterPowertrain.BEV}), allow_unknown=False)
    )
    assert [(r["value"], r["vehicles"]) for r in only_bev["rows"]] == [("ICE", 4), ("BEV", 4), ("PHEV", 0)]
    assert (only_bev["admitted"], only_bev["admitted_share"]) == (4, 0.4)
    assert fleet_shares(counts, ConnectionFilters())["admitted"] == 10
    assert fleet_shares(Counter(), ConnectionFilters())["admitted_share"] == 0.0
