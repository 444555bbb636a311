"""The pure parts of advice and what-if, without Redis: windows, reading and tallying decisions, verdicts, figures."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.builders import make_connection, make_vehicle
from schemas.access import VehicleAccessConfig
from schemas.catalog import get_catalog
from schemas.connection import ConnectionStatus
from schemas.grant import ConnectionFilters, FilterPowertrain
from schemas.permissions import PermissionSet
from schemas.powertrain import Powertrain
from services.insights.advice import permission_uses
from services.insights.counts import MalformedDecisionError, UsageTotals, read_use, tally
from services.insights.grants import Grants
from services.insights.whatif import what_if_of
from services.insights.window import Window, WindowError, format_window, parse_window
from services.registry.fleet import VehicleGroup
from services.registry.records import encode_connection, encode_vehicle, record_active_grant, record_signature

HOUR_MS = 3_600_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30m", timedelta(minutes=30)), ("12h", timedelta(hours=12)), ("7d", timedelta(days=7)), ("2w", timedelta(14))],
)
def test_a_window_is_a_count_and_a_unit(text: str, expected: timedelta) -> None:
    """Minutes, hours, days and weeks parse, and print back as a window that parses the same."""
    assert parse_window(text) == expected
    assert parse_window(format_window(expected)) == expected
    assert format_window(timedelta(days=7)) == "7d"


@pytest.mark.parametrize("text", ["7x", "0d", "-1d", "7", "d", "1.5h", "7 d x", ""])
def test_a_bad_window_is_an_error_naming_it(text: str) -> None:
    """Another unit, zero, a sign, a fraction or no unit is refused, and the message quotes what was given."""
    with pytest.raises(WindowError, match=repr(text)):
        parse_window(text)


def test_a_window_reads_every_hour_it_touches() -> None:
    """A 90-minute look-back at 10:15 reads 08:00 to 11:00: three whole hours (the buckets' granularity)."""
    window = Window.ending(timedelta(minutes=90), datetime(2026, 1, 15, 10, 15, tzinfo=UTC))
    assert len(window.hours) == 3
    assert (window.start, window.end) == (datetime(2026, 1, 15, 8, tzinfo=UTC), datetime(2026, 1, 15, 11, tzinfo=UTC))


def decision(outcome: str, target: str | None = "odometer-traveleddistance", **fields: Any) -> dict[bytes, bytes]:
    known = target is not None and target not in ("nope", "no-such-signal")
    permission = get_catalog().signal_or_command(target).permission if known and target else None
    body = {"outcome": outcome, "target": target, "permission": permission, "vehicle_id": "v1", "app_id": "a"}
    return {b"data": json.dumps(body | fields).encode()}


def test_a_decision_is_read_with_the_hour_of_its_entry_id() -> None:
    """The counted fields come from `data`; the hour from the entry id, whatever the decision says of its time."""
    use = read_use(f"{5 * HOUR_MS + 999}-3".encode(), decision("ALLOWED", decided_at="1999-01-01T00:00:00Z"))
    assert (use.hour, use.app_id, use.outcome, use.permission) == (5, "a", "ALLOWED", "read_odometer")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({}, "deleted from the stream"),
        ({b"other": b"x"}, "no `data`"),
        ({b"data": b"not json"}, "Invalid JSON"),
        ({b"data": b"[1, 2]"}, "an object"),
        (decision("MAYBE"), "outcome"),
        (decision("ALLOWED", permission="read_everything"), "unknown permission"),
        (decision("ALLOWED", target="no-such-signal", permission="read_odometer"), "known target"),
        (decision("PERMISSION_DENIED", permission=None), "known target"),
        (decision("ALLOWED", app_id="has space"), "app_id"),
    ],
)
def test_what_is_not_a_decision_is_malformed(fields: dict[bytes, bytes], reason: str) -> None:
    """No fields (deleted while pending), no data, not JSON, not an object, an unknown outcome or permission, a
    countable outcome without a known target, an app id that could not be a key part: malformed, with the reason."""
    with pytest.raises(MalformedDecisionError, match=reason):
        read_use(b"1-0", fields)


def test_a_batch_tallies_per_app_and_hour_into_few_fields() -> None:
    """Uses of one app and hour add up in one counter; another hour or app gets its own; no app, no count; a
    not-capable use is split by the vehicle's powertrain and make (`?` for one not registered)."""
    uses = [
        read_use(b"1-0", decision("ALLOWED")),
        read_use(b"2-0", decision("ALLOWED")),
        read_use(b"3-0", decision("PERMISSION_DENIED", "lock")),
        read_use(b"4-0", decision("VEHICLE_NOT_CAPABLE", "charge-ischarging")),
        read_use(b"5-0", decision("VEHICLE_NOT_CAPABLE", "charge-ischarging", vehicle_id="gone")),
        read_use(f"{HOUR_MS}-0".encode(), decision("ALLOWED")),
        read_use(b"6-0", decision("REJECTED", target="nope", permission=None, app_id="b")),
        read_use(b"7-0", decision("UNAUTHORIZED", app_id=None)),
    ]
    buckets = tally(uses, {"v1": ("ICE", "Ford|Lincoln")})
    assert buckets == {
        ("a", 0): Counter(
            {
                "o|ALLOWED": 2,
                "a|read_odometer": 2,
                "t|odometer-traveleddistance": 2,
                "o|PERMISSION_DENIED": 1,
                "d|control_security": 1,
                "o|VEHICLE_NOT_CAPABLE": 2,
                "n|charge-ischarging|ICE|Ford|Lincoln": 1,
                "n|charge-ischarging|?|?": 1,
            }
        ),
        ("a", 1): Counter({"o|ALLOWED": 1, "a|read_odometer": 1, "t|odometer-traveleddistance": 1}),
        ("b", 0): Counter({"o|REJECTED": 1}),
    }
    totals = UsageTotals.of_buckets(
        {name.encode(): str(n).encode() for name, n in counts.items()} | {b"z|new": b"1"} for counts in buckets.values()
    )
    assert totals.not_capable == Counter(
        {("charge-ischarging", "Ford|Lincoln", "ICE"): 1, ("charge-ischarging", "?", "?"): 1}
    )
    assert (totals.outcomes["ALLOWED"], totals.allowed["read_odometer"], totals.denied["control_security"]) == (3, 3, 1)


def grants(*held: tuple[int, tuple[str, ...]]) -> Grants:
    """`count` connections holding each permission tuple."""
    return Grants(Counter({PermissionSet.optional(names).granted: count for count, names in held}))


def test_each_permission_gets_its_verdict() -> None:
    """Held and unused: unused; optional and denied: unchecked; required and denied: stale grants; denied and not
    requested: unrequested; used: none. Lacked-by counts the connections without it."""
    requested = PermissionSet.of(
        [("read_odometer", True), ("read_vin", False), ("read_charge", False), ("read_battery", False)]
    )
    totals = UsageTotals()
    totals.allowed.update({"read_battery": 4, "read_charge": 1})
    totals.allowed_targets.update({"tractionbattery-stateofcharge": 3, "tractionbattery-range": 1, "lock": 9})
    totals.denied.update({"read_charge": 2, "read_odometer": 1, "read_tires": 5})
    held = grants((3, ("read_odometer", "read_vin", "read_charge", "read_battery")), (2, ("read_odometer", "read_vin")))
    uses = {u.permission: u for u in permission_uses(requested, totals, held)}
    assert [u.permission for u in uses.values()] == [
        "read_battery",
        "read_charge",
        "read_odometer",
        "read_vin",
        "read_tires",
    ]
    assert {name: u.verdict for name, u in uses.items()} == {
        "read_battery": None,
        "read_charge": "unchecked",
        "read_odometer": "stale_grants",
        "read_vin": "unused",
        "read_tires": "unrequested",
    }
    assert (uses["read_charge"].held_by, uses["read_charge"].lacked_by) == (3, 2)
    assert uses["read_battery"].allowed_by_target == {"tractionbattery-range": 1, "tractionbattery-stateofcharge": 3}


def test_what_if_sums_the_fleet_groups_and_the_grants() -> None:
    """Connectable vehicles follow the filters (ICE covers HEV); a target's share is of connectable vehicles; a
    connection lacking a required permission is counted apart from those lacking only optional ones."""
    bev, ice = get_catalog().default_capabilities(Powertrain.BEV), get_catalog().default_capabilities(Powertrain.ICE)
    groups = [
        VehicleGroup("Tesla", Powertrain.BEV, bev, 6),
        VehicleGroup("Tesla", Powertrain.BEV, bev - {"charge-ischarging"}, 2),
        VehicleGroup("Ford", Powertrain.HEV, ice, 5),
        VehicleGroup("Ford", Powertrain.PHEV, ice, 3),
        VehicleGroup("Acme", Powertrain.UNKNOWN, ice, 1),
    ]
    config = VehicleAccessConfig.select(
        signals=["charge-ischarging", "odometer-traveleddistance"], required=["odometer-traveleddistance"]
    )
    filters = ConnectionFilters(
        powertrains=frozenset({FilterPowertrain.BEV, FilterPowertrain.ICE}), allow_unknown=False
    )
    held = grants((4, ("read_odometer", "read_charge")), (2, ("read_odometer",)), (1, ("read_charge",)))
    result = what_if_of("a", config, filters, groups, held)
    assert (result.vehicles, result.connectable) == (17, 13)
    assert [(s.name, s.vehicles, s.connectable) for s in result.by_make] == [
        ("Ford", 8, 5),
        ("Tesla", 8, 8),
        ("Acme", 1, 0),
    ]
    assert [(s.name, s.connectable) for s in result.by_powertrain] == [
        ("BEV", 8),
        ("HEV", 5),
        ("PHEV", 0),
        ("UNKNOWN", 0),
    ]
    assert [(t.target, t.capable, t.share) for t in result.targets] == [
        ("charge-ischarging", 6, 6 / 13),
        ("odometer-traveleddistance", 13, 1.0),
    ]
    lacking = result.connections
    assert (lacking.active, lacking.lacking_required, lacking.lacking_optional_only) == (7, 1, 2)
    assert lacking.lacking == {"read_charge": 2, "read_odometer": 1}
    assert result.to_json()["targets"][0]["share"] == 0.4615


def test_what_if_of_an_empty_fleet_has_no_shares() -> None:
    """With no vehicle able to connect, a share is None (JSON null), not a division by zero."""
    config = VehicleAccessConfig.select(signals=["odometer-traveleddistance"])
    result = what_if_of("a", config, ConnectionFilters(), [], Grants())
    assert [t.share for t in result.targets] == [None]
    assert result.to_json()["connections"] == {
        "active": 0,
        "lacking_required": 0,
        "lacking_optional_only": 0,
        "lacking": {"read_odometer": 0},
    }


def test_records_are_read_without_building_them() -> None:
    """A connection record gives its grant (None once revoked); a vehicle record its make, powertrain and its
    capabilities' differences from the powertrain's defaults."""
    connection = make_connection("read_odometer", "read_vin")
    assert record_active_grant(encode_connection(connection)) == connection.permissions.granted
    assert record_active_grant(encode_connection(make_connection("read_vin", status=ConnectionStatus.REVOKED))) is None
    vehicle = make_vehicle(Powertrain.PHEV, lacks=["charge-ischarging"])
    assert record_signature(encode_vehicle(vehicle)) == ("Tesla", "PHEV", (), ("charge-ischarging",))
