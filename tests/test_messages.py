"""The wire contract: request, decision, connection-event and dead-letter messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from devtools.builders import NOW, make_connection, make_request, make_vehicle
from schemas.connection import ConnectionStatus
from schemas.contract import json_schema_files
from schemas.decision import decide, rfc3339
from schemas.messages import (
    ConnectionEventMessage,
    ConnectionEventType,
    DeadLetterMessage,
    DecisionMessage,
    ParamValue,
    RequestMessage,
    decode_request,
)
from schemas.outbound import decision_message, encode_decision
from schemas.permissions import PermissionSet

CONTRACT_DIR = Path(__file__).resolve().parent.parent / "docs" / "contract"
REQUEST = (
    b'{"v":1,"request_id":"r-1","connection_id":"c-1","vehicle_id":"v-1","kind":"command",'
    b'"target":"set-charge-limit","issued_at":"2026-11-28T12:00:00Z","params":{"percent":80}}'
)


def test_request_round_trip() -> None:
    """A request decodes from bytes and encodes back to equal JSON."""
    request = decode_request(REQUEST)
    assert request.params == {"percent": 80}
    assert decode_request(request.encode()) == request
    assert json.loads(request.encode())["v"] == 1


def test_plain_redis_cli_request_without_v_is_version_1() -> None:
    """`"v"` defaults to 1, so a hand-written request needs only the named fields."""
    raw = json.loads(REQUEST)
    del raw["v"], raw["params"]
    assert decode_request(json.dumps(raw)).v == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"v": 2}, "v"),
        ({"kind": "query"}, "kind"),
        ({"issued_at": "2026-11-28T12:00:00"}, "issued_at"),
        ({"issued_at": 1764331200}, "issued_at"),
        ({"request_id": ""}, "request_id"),
        ({"request_id": 7}, "request_id"),
        ({"params": {"nested": {"a": 1}}}, "params"),
        ({"target": None}, "target"),
    ],
)
def test_invalid_requests_fail_validation_at_the_field(change: dict[str, object], field: str) -> None:
    """Wrong versions, kinds, naive times, empty ids, wrong types and nested params are refused."""
    raw = json.loads(REQUEST) | change
    with pytest.raises(ValidationError) as raised:
        decode_request(json.dumps(raw))
    assert raised.value.errors()[0]["loc"][0] == field


def test_missing_field_is_refused() -> None:
    """Every request field but params and v is needed."""
    raw = json.loads(REQUEST)
    del raw["vehicle_id"]
    with pytest.raises(ValidationError, match="vehicle_id"):
        decode_request(json.dumps(raw))


def test_decision_message_has_smartcar_shaped_error() -> None:
    """A decision echoes the request and carries the error with Smartcar's field names."""
    request = make_request("tractionbattery-stateofcharge")
    decision = decide(request, make_connection("read_odometer"), make_vehicle())
    message = decision_message(decision, request, decision_id="d-1", decided_at=NOW, entry_id="1-0")
    wire = json.loads(message.encode())
    assert wire["outcome"] == "PERMISSION_DENIED"
    assert (wire["request_id"], wire["vehicle_id"], wire["permission"]) == ("req-1", "veh-1", "read_battery")
    assert set(wire["error"]) == {
        "type",
        "code",
        "description",
        "statusCode",
        "requestId",
        "resolution",
        "suggestedUserMessage",
        "docURL",
    }
    assert wire["error"]["resolution"] == {"type": "REAUTHENTICATE"}
    assert DecisionMessage.model_validate_json(message.encode()) == message


def test_connection_event_carries_permissions_as_items() -> None:
    """A connection event lists its permissions as name/required items and decodes back."""
    event = ConnectionEventMessage(
        event_id="e-1",
        type=ConnectionEventType.CREATED,
        connection_id="c-1",
        vehicle_id="v-1",
        permissions=PermissionSet.of([("read_odometer", True), ("read_battery", False)]),
        config_version=3,
        scope=None,
        occurred_at=NOW,
    )
    wire = json.loads(event.encode())
    assert wire["type"] == "connection.created"
    assert wire["permissions"] == [
        {"name": "read_battery", "required": False},
        {"name": "read_odometer", "required": True},
    ]
    assert ConnectionEventMessage.model_validate_json(event.encode()) == event


def test_connection_event_rejects_unknown_permission() -> None:
    """Permissions on the wire are validated against the catalog."""
    wire = {
        "event_id": "e-1",
        "type": "connection.revoked",
        "connection_id": "c",
        "vehicle_id": "v",
        "permissions": [{"name": "read_mind", "required": False}],
        "config_version": None,
        "scope": None,
        "occurred_at": "2026-11-28T12:00:00Z",
    }
    with pytest.raises(ValidationError, match="read_mind"):
        ConnectionEventMessage.model_validate_json(json.dumps(wire))


def test_dead_letter_keeps_original_fields() -> None:
    """A dead-letter entry round-trips its original fields, binary ones base64-encoded."""
    entry = DeadLetterMessage(
        entry_id="1-0",
        stream="fleetgate:requests",
        fields={"data": "{not json"},
        binary_fields={"blob": "AAE="},
        reason="failed 5 times: boom",
        deliveries=5,
        dead_at=NOW,
    )
    assert DeadLetterMessage.model_validate_json(entry.encode()) == entry


def test_requests_ignore_unknown_fields_but_other_messages_forbid_them() -> None:
    """Requests may carry extra fields (ignored); our own outputs are exact."""
    raw = json.loads(REQUEST) | {"trace": "x"}
    assert "trace" not in decode_request(json.dumps(raw)).model_dump()
    assert RequestMessage.model_config.get("extra") == "ignore"
    assert DecisionMessage.model_config.get("extra") == "forbid"


def test_checked_in_json_schemas_are_current() -> None:
    """docs/contract/ holds exactly what `fleetgate contract export` generates."""
    generated = json_schema_files()
    on_disk = {p.name: p.read_text() for p in CONTRACT_DIR.glob("*.schema.json")}
    assert on_disk == generated


def test_request_json_schema_describes_the_contract() -> None:
    """The request schema names the required fields and the version constant."""
    schema = json.loads(json_schema_files()["request.v1.schema.json"])
    assert set(schema["required"]) == {"request_id", "connection_id", "vehicle_id", "kind", "target", "issued_at"}
    assert schema["properties"]["v"]["const"] == 1


ids = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40)
resource_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,30}", fullmatch=True)
CASES = [
    ("tractionbattery-stateofcharge", "signal", None, "read_battery"),  # ALLOWED
    ("tractionbattery-stateofcharge", "signal", None, "read_odometer"),  # PERMISSION_DENIED
    ("internalcombustionengine-fuellevel", "signal", None, "read_fuel"),  # VEHICLE_NOT_CAPABLE
    ("set-charge-limit", "command", {"percent": 101}, "control_charge"),  # REJECTED, bad parameter
    ('no-such "target" \u00e9', "signal", None, "read_fuel"),  # REJECTED, unknown target
]


@given(ids, ids, resource_ids, st.sampled_from(CASES), st.booleans(), st.none() | ids, st.none() | resource_ids)
def test_fast_decision_encoder_matches_the_model(
    request_id: str,
    decision_id: str,
    vehicle_id: str,
    case: tuple[str, str, dict[str, ParamValue] | None, str],
    revoked: bool,
    entry_id: str | None,
    app_id: str | None,
) -> None:
    """The hot path's encode_decision() and the reference encoder (the pydantic model) give the same message, for
    any ids and app ids."""
    target, kind, params, granted = case
    request = make_request(target, kind=kind, params=params, request_id=request_id, vehicle_id=vehicle_id)
    status = ConnectionStatus.REVOKED if revoked else ConnectionStatus.ACTIVE
    connection = make_connection(granted, status=status, vehicle_id=vehicle_id)
    decision = decide(request, connection, make_vehicle(vehicle_id=vehicle_id))
    fast = encode_decision(decision, request, decision_id, rfc3339(NOW), entry_id, app_id=app_id)
    model = decision_message(decision, request, decision_id, NOW, entry_id, app_id=app_id)
    assert DecisionMessage.model_validate_json(fast) == model
    assert model.app_id == app_id
    assert json.loads(fast) == json.loads(model.encode())
