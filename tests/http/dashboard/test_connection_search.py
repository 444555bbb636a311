"""The Connections search without Redis: the query a listing URL carries, what it admits from a record as stored,
and the light readers of connection and vehicle records agreeing with the full ones."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from devtools.builders import NOW, make_vehicle
from schemas.connection import Connection, ConnectionStatus
from schemas.permissions import PermissionSet
from schemas.powertrain import Powertrain
from services.http.dashboard.connection_search import ConnectionQuery, Found, QueryError, StatusFilter
from services.registry.records import (
    connection_listing,
    decode_connection,
    encode_connection,
    encode_vehicle,
    vehicle_summary,
)


def connection(*, user_id: str | None = "ada", status: ConnectionStatus = ConnectionStatus.ACTIVE) -> Connection:
    return Connection(
        id="c-1",
        vehicle_id="veh-1",
        permissions=PermissionSet.of([("read_odometer", True), ("read_location", False)]),
        config_version=3,
        status=status,
        created_at=NOW,
        updated_at=NOW + timedelta(minutes=5),
        app_id="acme",
        user_id=user_id,
    )


def found(record: Connection, powertrain: Powertrain = Powertrain.BEV) -> Found:
    encoded = encode_connection(record)
    vehicle = vehicle_summary(encode_vehicle(make_vehicle(powertrain, vehicle_id=record.vehicle_id)))
    return Found(record.id, encoded, connection_listing(record.id, encoded), vehicle)


def test_listing_reads_what_the_full_decoder_reads() -> None:
    """The light reader's status, vehicle, permissions mask, app and user equal the decoded connection's, for the
    current format and for format 1 (before applications: the default app, no user)."""
    for record in (connection(), connection(user_id=None, status=ConnectionStatus.REVOKED)):
        encoded = encode_connection(record)
        listing, full = connection_listing(record.id, encoded), decode_connection(record.id, encoded)
        assert (listing.active, listing.vehicle_id, listing.granted, listing.app_id, listing.user_id) == (
            full.status is ConnectionStatus.ACTIVE,
            full.vehicle_id,
            full.permissions.granted,
            full.app_id,
            full.user_id,
        )
    old = b"1|a|veh-9|1|0|1|1700000000000|1700000000000|"
    assert (connection_listing("c-9", old).app_id, connection_listing("c-9", old).user_id) == (
        decode_connection("c-9", old).app_id,
        None,
    )


def test_vehicle_summary_reads_the_record_and_an_unknown_powertrain_as_unknown() -> None:
    """A vehicle record's VIN, make, model, year and powertrain; a powertrain this code does not know reads as
    UNKNOWN rather than failing the page."""
    vehicle = make_vehicle(Powertrain.PHEV)
    summary = vehicle_summary(encode_vehicle(vehicle))
    assert (summary.vin, summary.make, summary.model, summary.year, summary.powertrain) == (
        vehicle.vin,
        vehicle.make,
        vehicle.model,
        vehicle.year,
        Powertrain.PHEV,
    )
    odd = json.loads(encode_vehicle(vehicle)) | {"powertrain": "HYDROGEN"}
    assert vehicle_summary(json.dumps(odd)).powertrain is Powertrain.UNKNOWN


def test_parse_names_the_wrong_parameter() -> None:
    """Empty parameters mean any; a wrong status, powertrain, permission or page is a QueryError naming it."""
    assert ConnectionQuery.parse({"q": "  ", "status": "", "powertrain": "", "permission": ""}) == ConnectionQuery()
    for params, named in (({"status": "x"}, "'x'"), ({"powertrain": "X"}, "'X'"),
                          ({"permission": "read_x"}, "'read_x'"), ({"page": "-1"}, "'-1'"),
                          ({"q": "x" * 129}, "128")):  # fmt: skip
        with pytest.raises(QueryError, match=named):
            ConnectionQuery.parse(params)


def test_admits_by_status_permission_powertrain_and_text() -> None:
    """Each criterion alone keeps or drops a connection; the text matches ids, the VIN and the make in any case;
    without the vehicle's part only the record's criteria count."""
    active = found(connection())
    revoked = found(connection(status=ConnectionStatus.REVOKED), Powertrain.ICE)
    assert ConnectionQuery(status=StatusFilter.ACTIVE).admits(active)
    assert not ConnectionQuery(status=StatusFilter.ACTIVE).admits(revoked)
    assert ConnectionQuery(status=StatusFilter.REVOKED).admits(revoked)
    assert ConnectionQuery(permission="read_location").admits(active)
    assert not ConnectionQuery(permission="read_battery").admits(active)
    assert ConnectionQuery(powertrain=Powertrain.ICE).admits(revoked)
    assert not ConnectionQuery(powertrain=Powertrain.ICE).admits(active)
    for text in ("ADA", "veh-1", "c-1", "5yj3e1ea7kf000001", "tesla"):
        assert ConnectionQuery(text=text).admits(active)
    assert not ConnectionQuery(text="bob").admits(active)
    assert ConnectionQuery(text="bob").admits(active, with_vehicle=False)  # the vehicle's part is left for later


def test_params_leave_out_what_is_any_and_keep_the_rest_across_pages() -> None:
    """The next page's URL parameters are the query's own, without the empty ones."""
    query = ConnectionQuery(text="ada", permission="read_location", page=2)
    assert query.params(page=3) == {"q": "ada", "permission": "read_location", "page": 3}
    assert ConnectionQuery().params() == {}
