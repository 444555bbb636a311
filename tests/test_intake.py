"""`read_entry` (services/gatekeeper/intake.py), example by example: a stream entry becomes a request, or a
Rejection with the exact request id to answer under, the reason, and the fields it can echo.

tests/reliability/test_fuzz_parsers.py checks the same function on random bytes; these pin what it says.
"""

from __future__ import annotations

import json
from typing import Any

from devtools.builders import NOW, make_request, request_body
from schemas.outbound import Rejection
from schemas.request_decoder import Request, from_model
from services.gatekeeper.intake import read_entry

ENTRY_ID = b"1764331200000-7"
UNREADABLE = "unreadable:1764331200000-7"
LIMIT = 1024


def body(**overrides: Any) -> dict[str, Any]:
    """The JSON object of a valid request (`make_request`'s fields); `overrides` replace or add fields."""
    return request_body(**overrides)


def read(data: bytes) -> Request | Rejection:
    return read_entry(ENTRY_ID, {b"data": data}, LIMIT)


def test_a_valid_entry_is_its_request() -> None:
    """A valid `data` payload decodes to the request it describes."""
    assert read(json.dumps(body()).encode()) == from_model(make_request("odometer-traveleddistance", issued_at=NOW))


def test_a_payload_of_exactly_the_limit_is_decoded() -> None:
    """The size limit is inclusive: a valid payload padded to exactly max_payload_bytes is still a request."""
    data = json.dumps(body()).encode()
    padded = data[:-1] + b" " * (LIMIT - len(data)) + b"}"
    assert len(padded) == LIMIT
    assert isinstance(read(padded), Request)


def test_an_entry_without_data_is_rejected_under_its_entry_id() -> None:
    """No `data` field (other fields are ignored): rejected as unreadable:<entry id>, nothing echoed."""
    assert read_entry(ENTRY_ID, {b"payload": json.dumps(body()).encode()}, LIMIT) == Rejection(
        UNREADABLE, "The entry has no `data` field.", {}
    )


def test_an_oversized_payload_is_rejected_unread() -> None:
    """A payload over the limit is rejected with its size and the limit, and not parsed (no id echoed)."""
    data = json.dumps(body(params={"pad": "x" * LIMIT})).encode()
    assert read(data) == Rejection(UNREADABLE, f"The payload is {len(data)} bytes; the limit is {LIMIT}.", {})


def test_invalid_utf8_and_invalid_json_are_rejected_as_not_json() -> None:
    """Bytes that are not UTF-8, and UTF-8 that is not JSON, get the same reason under the entry id."""
    not_json = Rejection(UNREADABLE, "The payload is not valid UTF-8 JSON.", {})
    assert read(b"\xff\xfe\x00binary") == not_json
    assert read(b'{"request_id": "req-1",') == not_json
    assert read(b"") == not_json


def test_a_json_array_or_string_is_rejected_as_not_an_object() -> None:
    """Valid JSON that is not an object is rejected naming its JSON type."""
    assert read(json.dumps([body()]).encode()) == Rejection(
        UNREADABLE, "The payload is a JSON list, not an object.", {}
    )
    assert read(b'"req-1"') == Rejection(UNREADABLE, "The payload is a JSON str, not an object.", {})


def test_missing_fields_are_listed_and_the_readable_ids_echoed() -> None:
    """Missing fields are named in order; request_id and the readable string fields are echoed, others not."""
    data = json.dumps({"request_id": "req-2", "vehicle_id": "veh-1", "kind": "signal", "connection_id": 7})
    assert read(data.encode()) == Rejection(
        "req-2",
        "Invalid request: connection_id: Input should be a valid string; target: Field required; "
        "issued_at: Field required",
        {"vehicle_id": "veh-1", "kind": "signal"},
    )


def test_a_wrong_field_type_keeps_the_request_id_and_echoes_every_field() -> None:
    """A numeric issued_at (RFC 3339 only: no epoch seconds) is rejected under the request's own id, fields echoed,
    with the permission of the (known) target."""
    assert read(json.dumps(body(issued_at=1764331200)).encode()) == Rejection(
        "req-1",
        "Invalid request: issued_at: expected an RFC 3339 date-time with seconds and an offset, such as "
        "2026-11-28T12:00:00Z",
        {
            "connection_id": "conn-1",
            "vehicle_id": "veh-1",
            "kind": "signal",
            "target": "odometer-traveleddistance",
        },
        "read_odometer",
    )


def test_an_over_long_request_id_is_not_echoed() -> None:
    """A request_id over 128 characters is not answered under: unreadable:<entry id>, the other fields echoed."""
    assert read(json.dumps(body(request_id="r" * 129)).encode()) == Rejection(
        UNREADABLE,
        "Invalid request: request_id: String should have at most 128 characters",
        {
            "connection_id": "conn-1",
            "vehicle_id": "veh-1",
            "kind": "signal",
            "target": "odometer-traveleddistance",
        },
        "read_odometer",
    )


def test_a_lone_surrogate_request_id_is_not_echoed() -> None:
    """A request_id escaping a lone surrogate (no UTF-8 can hold it) is replaced by unreadable:<entry id>."""
    data = b'{"request_id": "\\ud800", "vehicle_id": "veh-1", "target": "x\\udc80"}'
    rejection = read(data)
    assert isinstance(rejection, Rejection)
    assert rejection.request_id == UNREADABLE
    assert rejection.reason.startswith("Invalid request: Invalid JSON: ")
    assert rejection.echo == {"vehicle_id": "veh-1"}


def test_an_empty_request_id_is_not_echoed() -> None:
    """An empty request_id is no id to answer under: unreadable:<entry id>, every problem listed."""
    assert read(b'{"request_id": "", "kind": 1}') == Rejection(
        UNREADABLE,
        "Invalid request: request_id: String should have at least 1 character; connection_id: Field required; "
        "vehicle_id: Field required; kind: Input should be 'signal' or 'command'; target: Field required; "
        "issued_at: Field required",
        {},
    )
