"""API v3 bodies and the compatibility answer, pure: each reply becomes the signal status the real API sends, and
the catalog decides compatibility."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.catalog import get_catalog
from schemas.problems import HTTP_AUTHENTICATION, HTTP_PERMISSION
from services.http.api_v3.routes import signal_of
from services.http.api_v3.shapes import error_document, iso
from services.http.compatibility import answer, level_capabilities
from services.http.pipeline import Reply

NOW = datetime(2026, 12, 7, 12, 0, 0, 123000, tzinfo=UTC)
ODOMETER = get_catalog().signal("odometer-traveleddistance")
ALLOWED = {"outcome": "ALLOWED", "request_id": "r-1"}


def _response(**fields: object) -> dict[str, object]:
    return {
        "request_id": "r-1",
        "status": "SUCCESS",
        "body": None,
        "error": None,
        "retrieved_at": "2026-12-07T11:59:59Z",
        "oem_updated_at": "2026-12-07T11:00:00Z",
        "responded_at": "2026-12-07T12:00:00.004Z",
        **fields,
    }


def test_a_call_nobody_answered_is_upstream_no_response_with_only_ingested_at() -> None:
    """A timed-out reply: ERROR UPSTREAM/NO_RESPONSE, no body, meta only ingestedAt (ISO, ms, Z)."""
    resource = signal_of(ODOMETER, "veh-1", Reply("r-1", None), NOW)
    status = resource["attributes"]["status"]
    assert (status["value"], status["error"]["type"], status["error"]["code"]) == ("ERROR", "UPSTREAM", "NO_RESPONSE")
    assert status["error"]["resolution"] == {"type": "RETRY_LATER"}
    assert "body" not in resource["attributes"]
    assert resource["meta"] == {"ingestedAt": "2026-12-07T12:00:00.123Z"}


def test_a_denied_signal_carries_the_real_permission_strings() -> None:
    """PERMISSION_DENIED: type PERMISSION, code UNKNOWN, title Unknown, Smartcar's detail, REAUTHENTICATE."""
    decision = {"outcome": "PERMISSION_DENIED", "error": {"type": "PERMISSION", "code": None, "description": "x"}}
    error = signal_of(ODOMETER, "veh-1", Reply("r-1", decision), NOW)["attributes"]["status"]["error"]
    assert error == {
        "type": "PERMISSION",
        "code": "UNKNOWN",
        "title": "Unknown",
        "detail": HTTP_PERMISSION.description,
        "description": "Deprecated. Use detail",
        "resolution": {"type": "REAUTHENTICATE"},
    }


def test_a_vehicle_state_error_keeps_the_stale_body_in_real_units() -> None:
    """A response with VEHICLE_STATE/UNREACHABLE and the last value: ERROR, the body kept, `kilometers` -> `km`."""
    error = {"type": "VEHICLE_STATE", "code": "UNREACHABLE", "description": "d", "resolution": {"type": None}}
    response = _response(status="ERROR", error=error, body={"value": 1200.5, "unit": "kilometers"})
    resource = signal_of(ODOMETER, "veh-1", Reply("r-1", ALLOWED, response), NOW)
    attributes = resource["attributes"]
    assert attributes["body"] == {"value": 1200.5, "unit": "km"}
    assert attributes["status"]["error"]["title"] == "Unreachable"
    assert attributes["status"]["error"]["resolution"] == {"type": "UNKNOWN_RESOLUTION_TYPE"}
    assert resource["meta"]["oemUpdatedAt"] == "2026-12-07T11:00:00.000Z"
    assert (attributes["name"], attributes["group"]) == ("TraveledDistance", "Odometer")


def test_no_value_is_unavailable() -> None:
    """A successful answer without a body: UNAVAILABLE, only ingestedAt."""
    resource = signal_of(ODOMETER, "veh-1", Reply("r-1", ALLOWED, _response()), NOW)
    assert resource["attributes"]["status"] == {"value": "UNAVAILABLE"}
    assert list(resource["meta"]) == ["ingestedAt"]


def test_top_level_error_uses_the_docs_lowercase_code_where_smartcars_is_null() -> None:
    """AUTHENTICATION (code null) is `unauthorized` / `Unauthorized`, status as a string, docURL as links.about."""
    (entry,) = error_document(HTTP_AUTHENTICATION)["errors"]
    assert (entry["status"], entry["type"], entry["code"], entry["title"]) == (
        "401",
        "AUTHENTICATION",
        "unauthorized",
        "Unauthorized",
    )
    assert entry["links"]["about"].startswith("https://smartcar.com/docs/errors/api-errors/")
    assert iso("2026-12-07T12:00:00+00:00") == "2026-12-07T12:00:00.000Z"


def test_compatibility_levels_and_unknown_vehicles() -> None:
    """bev: battery capable, fuel not; dinosaur: nothing, not compatible; an unknown vehicle: SMARTCAR_NOT_CAPABLE."""
    bev = answer(["read_battery", "read_fuel"], level_capabilities("bev"))
    assert [(c.permission, c.capable, c.reason) for c in bev.capabilities] == [
        ("read_battery", True, None),
        ("read_fuel", False, "VEHICLE_NOT_CAPABLE"),
    ]
    assert (bev.compatible, bev.reason) == (False, "VEHICLE_NOT_COMPATIBLE")
    everything = answer(["read_battery", "read_fuel", "control_security"], level_capabilities("compatible"))
    assert (everything.compatible, everything.reason) == (True, None)
    dinosaur = answer(["read_odometer"], level_capabilities("dinosaur"), refused="VEHICLE_NOT_COMPATIBLE")
    assert (dinosaur.compatible, dinosaur.capabilities[0].capable) == (False, False)
    unknown = answer(["read_odometer"], None)
    assert (unknown.compatible, unknown.capabilities[0].reason) == (False, "SMARTCAR_NOT_CAPABLE")
