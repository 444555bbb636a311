"""The v2 endpoint map against the catalog, the v2 bodies built from v3 signal bodies (units, fractions), and the
HTTP answer of an endpoint's decisions and responses (precedence, optional signals, timeouts, vehicle errors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from schemas.api_v2 import get_endpoints, load_endpoints
from schemas.catalog import get_catalog
from schemas.errors import CatalogError
from services.http.api_v2.answer import PIPELINE_IDS_HEADER, answer_of, calls_for
from services.http.api_v2.bodies import BodyError, Query, charge_limit_params, lock_status, odometer, tire_pressure
from services.http.pipeline import Reply

RID = "5dea93a1-3f79-4246-90c5-89610a20471b"


def test_each_endpoint_needs_the_catalogs_permission() -> None:
    """Every endpoint's targets are the catalog's, of one permission: odometer is read_odometer, lock control."""
    endpoints = get_endpoints()
    catalog = get_catalog()
    odo = endpoints.find("GET", "odometer")
    lock = endpoints.find("POST", "security")
    assert odo is not None
    assert lock is not None
    assert odo.permission(catalog) == "read_odometer"
    assert lock.permission(catalog) == "control_security"
    assert endpoints.find("GET", "nowhere") is None


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ('signals = { a = "odometer-traveleddistance", b = "vehicleidentification-vin" }', "mixes permissions"),
        ('signals = { a = "odometer-nowhere" }', "odometer-nowhere"),
    ],
)
def test_a_bad_map_is_refused_at_load(tmp_path: Path, entry: str, fragment: str) -> None:
    """An endpoint mixing permissions or naming an unknown signal fails to load, saying why."""
    path = tmp_path / "api_v2.toml"
    path.write_text(f'[[endpoints]]\npath = "x"\nmethod = "GET"\nbody = "odometer"\nsummary = "x"\n{entry}\n')
    with pytest.raises(CatalogError, match=fragment):
        load_endpoints(path)


def test_imperial_units_and_fractions() -> None:
    """Kilometers become miles and kPa psi in imperial; the charge limit fraction becomes the command's percent."""
    q = Query("v", imperial=True)
    assert odometer({"distance": {"value": 160.9344, "unit": "kilometers"}}, q) == {"distance": 100.0}
    tires = {"values": [{"row": 0, "column": 0, "tirePressure": 241.316495}], "rowCount": 1, "columnCount": 1}
    pressures = tire_pressure({"tires": tires}, q)
    assert isinstance(pressures, dict)
    assert pressures["frontLeft"] == pytest.approx(35.0)
    assert charge_limit_params({"limit": 0.7}) == {"percent": 70}
    with pytest.raises(BodyError):
        charge_limit_params({"limit": "0.7"})


def test_lock_status_leaves_out_what_the_vehicle_lacks() -> None:
    """Doors say LOCKED/UNLOCKED/OPEN; a sunroof the vehicle lacks is an empty list."""
    doors = {"values": [{"row": 0, "column": 0, "isOpen": False, "isLocked": True}]}
    body = lock_status(
        {"locked": {"value": True}, "doors": doors, "windows": {"values": []}, "sunroof": None}, Query("v")
    )
    assert isinstance(body, dict)
    assert body["isLocked"] is True
    assert body["doors"] == [{"type": "frontLeft", "status": "LOCKED"}]
    assert body["sunroof"] == []


def _decision(outcome: str, code: str | None = None) -> dict[str, Any]:
    return {"outcome": outcome, "error": None if outcome == "ALLOWED" else {"code": code}}


def _response(body: dict[str, Any] | None, error: dict[str, Any] | None = None, retry: int | None = None) -> Any:
    return {
        "status": "ERROR" if error else "SUCCESS",
        "body": body,
        "error": error,
        "retry_after_s": retry,
        "oem_updated_at": "2026-11-28T11:59:30Z",
        "retrieved_at": "2026-11-28T12:00:00Z",
    }


def test_incapable_goes_before_permission_and_headers_name_the_stream_ids() -> None:
    """Of two refused signals the answer is VEHICLE_NOT_CAPABLE 501 (the contract's precedence), with Smartcar's
    strings, the HTTP request id, and the requests' own ids in a header."""
    fuel = get_endpoints().find("GET", "fuel")
    assert fuel is not None
    replies = [
        Reply("r-1", _decision("PERMISSION_DENIED")),
        Reply("r-2", _decision("VEHICLE_NOT_CAPABLE")),
        Reply("r-3", _decision("PERMISSION_DENIED")),
    ]
    answer = answer_of(fuel, replies, Query("v"), RID, "Acme")
    assert answer.status == 501
    assert isinstance(answer.body, dict)
    assert answer.body["description"] == "The vehicle is incapable of performing your request."
    assert answer.body["requestId"] == RID
    assert answer.headers[PIPELINE_IDS_HEADER] == "r-1,r-2,r-3"


def test_vehicle_errors_timeouts_and_optional_signals() -> None:
    """A vehicle's RATE_LIMIT keeps its retry-after and gets the app's name; no answer is UPSTREAM NO_RESPONSE 502;
    an optional signal the vehicle lacks is left out of a success."""
    odo = get_endpoints().find("GET", "odometer")
    security = get_endpoints().find("GET", "security")
    assert odo is not None
    assert security is not None
    limited = {"type": "RATE_LIMIT", "code": "VEHICLE", "statusCode": 429, "requestId": "r-1",
               "suggestedUserMessage": "unable to connect to <app name>."}  # fmt: skip
    answer = answer_of(odo, [Reply("r-1", _decision("ALLOWED"), _response(None, limited, 30))], Query("v"), RID, "Acme")
    assert (answer.status, answer.headers["retry-after"]) == (429, "30")
    assert isinstance(answer.body, dict)
    assert answer.body["suggestedUserMessage"] == "unable to connect to Acme."
    assert answer.body["requestId"] == RID
    timed_out = answer_of(odo, [Reply("r-1", _decision("ALLOWED"))], Query("v"), RID, "Acme")
    assert isinstance(timed_out.body, dict)
    assert (timed_out.status, timed_out.body["code"]) == (502, "NO_RESPONSE")
    ok = _response({"value": False})
    replies = [
        Reply("a", _decision("ALLOWED"), ok),
        Reply("b", _decision("ALLOWED"), _response({"values": []})),
        Reply("c", _decision("ALLOWED"), _response({"values": []})),
        Reply("d", _decision("VEHICLE_NOT_CAPABLE")),
        Reply("e", _decision("ALLOWED"), _response({"isOpen": True})),
        Reply("f", _decision("VEHICLE_NOT_CAPABLE")),
    ]
    answer = answer_of(security, replies, Query("v"), RID, "Acme")
    assert answer.status == 200
    assert isinstance(answer.body, dict)
    assert (answer.body["sunroof"], answer.body["storage"]) == ([], [{"type": "rear", "status": "OPEN"}])
    assert answer.headers["sc-data-age"] == "2026-11-28T11:59:30.000Z"


def test_a_post_without_a_known_action_is_refused_before_the_stream() -> None:
    """{"action": "OPEN"} on security names no command: BodyError (VALIDATION 400), no request sent."""
    lock = get_endpoints().find("POST", "security")
    assert lock is not None
    assert calls_for(lock, "c", "v", {"action": "LOCK"})[0].target == "lock"
    with pytest.raises(BodyError):
        calls_for(lock, "c", "v", {"action": "OPEN"})
