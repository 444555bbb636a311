"""The wire contract: every stream entry carries one field `data`, a UTF-8 JSON object with `"v": 1`.

Encoding and decoding go straight through pydantic-core (bytes in, bytes out): these sit on the hot path.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Final, Literal, Protocol

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
)
from pydantic_core import from_json

from schemas.application import DEFAULT_APP_ID
from schemas.catalog import Kind
from schemas.permissions import PermissionSet
from schemas.problems import Outcome, SmartcarError
from schemas.rfc3339 import Rfc3339DateTime
from schemas.vehicle import Identifier, ResourceId

CONTRACT_VERSION: Final[Literal[1]] = 1
ParamValue = StrictBool | StrictInt | StrictFloat | StrictStr


class _Message(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", use_attribute_docstrings=True, json_schema_serialization_defaults_required=True
    )

    v: Literal[1] = CONTRACT_VERSION
    """The contract version."""

    def encode(self) -> bytes:
        return self.__pydantic_serializer__.to_json(self)


class RequestMessage(_Message):
    """In, on `{prefix}:requests`. Unknown fields are ignored: a request never carries its own scopes.

    The payload must be RFC 8259 JSON (no NaN or Infinity), without lone surrogate escapes in any string, and
    nested at most 200 levels deep (this object counts as one), unknown fields included; otherwise it is REJECTED.
    """

    model_config = ConfigDict(extra="ignore")

    request_id: Identifier
    connection_id: ResourceId
    vehicle_id: ResourceId
    kind: Kind
    target: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    """A signal code or command name of the catalog."""
    issued_at: Rfc3339DateTime
    """An RFC 3339 date-time, with seconds and an offset (`Z` or `+hh:mm`): `2026-11-28T12:00:00Z`. Nothing else:
    no number or numeric string (epoch seconds), no missing seconds, no `+0100`."""
    params: dict[str, ParamValue] | None = None
    """Command arguments; signals take none."""


class RequestFields(Protocol):
    """What deciding a request reads of it: a `RequestMessage`, or the gatekeeper's `Request`
    (schemas/request_decoder.py)."""

    @property
    def request_id(self) -> str: ...
    @property
    def connection_id(self) -> str: ...
    @property
    def vehicle_id(self) -> str: ...
    @property
    def kind(self) -> Kind: ...
    @property
    def target(self) -> str: ...
    @property
    def params(self) -> dict[str, ParamValue] | None: ...


class DecisionMessage(_Message):
    """Out, on `{prefix}:decisions`: exactly one per `request_id`.

    The request's fields are echoed; they are null only when a REJECTED request did not carry them readably.
    """

    decision_id: str
    request_id: str
    connection_id: str | None
    vehicle_id: str | None
    kind: Kind | None
    target: str | None
    params: dict[str, ParamValue] | None = None
    """The request's command arguments, echoed (so that whoever executes an ALLOWED command needs nothing else);
    null for a signal, a command without arguments, or a request that was not readable."""
    outcome: Outcome
    permission: str | None
    """The permission the target needs; null when the target is unknown."""
    error: SmartcarError | None
    decided_at: AwareDatetime
    entry_id: str | None = None
    """The request's stream entry id, when the gatekeeper knows it."""
    app_id: str | None = None
    """The application of the request's connection; null when the connection is unknown (or the request was
    not readable). Added in v1 after the first release: old consumers ignore it."""


class ResponseStatus(StrEnum):
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"


class ResponseMessage(_Message):
    """Out, on `{prefix}:responses`: exactly one per ALLOWED decision, what the vehicle answered.

    For a signal: its Smartcar v3 body and when the vehicle last reported it. For a command: its status. On
    failure (the vehicle's state refused it, or it did not answer) a Smartcar-shaped VEHICLE_STATE / UPSTREAM /
    RATE_LIMIT error, and for a signal the stale last value where Smartcar keeps one.
    """

    response_id: str
    request_id: str
    decision_id: str
    connection_id: str
    vehicle_id: str
    kind: Kind
    target: str
    status: ResponseStatus
    body: dict[str, Any] | None
    """A signal's value in Smartcar's v3 body shape (with an error: the last value, if the vehicle has one); null
    for a command."""
    oem_updated_at: AwareDatetime | None
    """When the vehicle last reported the signal's value (null for a command)."""
    retrieved_at: AwareDatetime
    """When the vehicle answered (its simulated clock)."""
    error: SmartcarError | None
    """Null exactly when the status is SUCCESS."""
    retry_after_s: int | None = None
    """With a RATE_LIMIT error: seconds before the vehicle takes another request."""
    responded_at: AwareDatetime
    """When the vehicles service wrote this response (wall clock)."""


class ConnectionEventType(StrEnum):
    CREATED = "connection.created"
    REAUTHORIZED = "connection.reauthorized"
    REVOKED = "connection.revoked"


class ConnectionEventMessage(_Message):
    """Out, on `{prefix}:connection-events`: every change to a connection's consent."""

    event_id: str
    type: ConnectionEventType
    connection_id: str
    vehicle_id: str
    permissions: PermissionSet
    """The scopes the connection holds after the event (for a revocation: those it held)."""
    config_version: int | None
    scope: str | None
    occurred_at: AwareDatetime
    app_id: str = DEFAULT_APP_ID
    """The application the connection belongs to (added in v1 after the first release)."""
    user_id: str | None = None
    """The connected-services account (Connect's user) that granted it; null when made without one."""


class DeadLetterMessage(_Message):
    """Out, on `{prefix}:deadletter`: an entry that failed too often, with its original fields and why."""

    entry_id: str
    stream: str
    fields: dict[str, str]
    """The original fields that were valid UTF-8."""
    binary_fields: dict[str, str] = {}
    """The original fields that were not, base64-encoded."""
    reason: str
    deliveries: int
    dead_at: AwareDatetime


def decode_request(data: bytes | str) -> RequestMessage:
    """Raises pydantic.ValidationError for anything that is not a valid request, RFC 8259 JSON included."""
    # The validator itself: model_validate_json adds a Python frame and keyword handling per call (about 0.4 us).
    request: RequestMessage = _VALIDATE_JSON(data)
    raw = data if isinstance(data, bytes) else data.encode(errors="surrogatepass")
    # pydantic's JSON parser takes the tokens NaN and Infinity, anywhere (an ignored field too); JSON has no such
    # numbers. A request rarely holds a capital N or I (ids, targets and times have none), and a one-byte search is
    # a memchr: a strict parse runs only when one is there (it may well be inside a string).
    if (b"N" in raw or b"I" in raw) and _has_non_json_number(raw):
        raise ValidationError.from_exception_data(
            "RequestMessage",
            [{"type": "json_invalid", "loc": (), "input": data, "ctx": {"error": NON_JSON_NUMBER}}],
            input_type="json",
        )
    return request


NON_JSON_NUMBER = "NaN and Infinity are not JSON numbers (RFC 8259)"
_VALIDATE_JSON = RequestMessage.__pydantic_validator__.validate_json


def _has_non_json_number(data: bytes) -> bool:
    try:
        from_json(data, allow_inf_nan=False)
    except ValueError:
        return True
    return False


MESSAGE_TYPES: dict[str, type[_Message]] = {
    "request": RequestMessage,
    "decision": DecisionMessage,
    "connection-event": ConnectionEventMessage,
    "deadletter": DeadLetterMessage,
    "response": ResponseMessage,
}
