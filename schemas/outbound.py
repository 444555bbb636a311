"""Every message fleetgate writes to its output streams, encoded here and nowhere else.

Each message has two encoders that must agree:
- the **reference encoder** builds the pydantic message model (`decision_message`, `rejection_message`,
  `response_message`, `dead_letter_message`); its JSON is the contract's, and tests use it as the oracle;
- the gatekeeper's hot path uses `decision_json` (`encode_decision` is its UTF-8), which joins precomputed
  strings (pydantic costs about 10x as much per decision: `python -m bench.decide`), and the vehicles service's
  `encode_response`, which serializes a plain dict; tests check both against the reference.
Rejections and dead letters are rare enough to be encoded by their models alone. Connection events are written
by the Connect service from their model (`ConnectionEventMessage.encode()`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from pydantic_core import to_json

from schemas import problems
from schemas.catalog import Kind
from schemas.decision import Decision
from schemas.messages import (
    DeadLetterMessage,
    DecisionMessage,
    ParamValue,
    RequestFields,
    ResponseMessage,
    ResponseStatus,
)
from schemas.problems import Outcome, Problem

_REQUEST_ID_SLOT = "\x00request-id\x00"
# Escapes every non-ASCII character, lone surrogates included, so the output is always valid UTF-8.
_quote = json.encoder.encode_basestring_ascii


def decision_message(
    decision: Decision,
    request: RequestFields,
    decision_id: str,
    decided_at: datetime,
    entry_id: str | None = None,
    *,
    app_id: str | None = None,
) -> DecisionMessage:
    """The reference encoder of a decision: the message as published on `{prefix}:decisions`."""
    return DecisionMessage(
        decision_id=decision_id,
        request_id=request.request_id,
        connection_id=request.connection_id,
        vehicle_id=request.vehicle_id,
        kind=request.kind,
        target=request.target,
        params=request.params,
        outcome=decision.outcome,
        permission=decision.permission,
        error=decision.error(request.request_id),
        decided_at=decided_at,
        entry_id=entry_id,
        app_id=app_id,
    )


def encode_decision(
    decision: Decision,
    request: RequestFields,
    decision_id: str,
    decided_at: str,
    entry_id: str | None = None,
    *,
    app_id: str | None = None,
) -> bytes:
    """The JSON of `decision_message(...)`, as UTF-8 (see decision_json)."""
    return decision_json(decision, request, decision_id, decided_at, entry_id, app_id=app_id).encode()


def decision_json(
    decision: Decision,
    request: RequestFields,
    decision_id: str,
    decided_at: str,
    entry_id: str | None = None,
    *,
    app_id: str | None = None,
) -> str:
    """The JSON of `decision_message(...)`, built by string joins: the gatekeeper's hot path.

    `decided_at` is RFC 3339 UTC text (see `schemas.decision.rfc3339()`), formatted once per batch by the caller.
    `app_id` is the application of the request's connection (None when it is unknown).
    """
    head, tail = decision.wire_fragments or _fragments(decision)
    request_id = _quote(request.request_id)
    # The ids need no escaping: a request's connection and vehicle ids match ResourceId's pattern (both decoders).
    error = f"{head}{request_id}{tail}" if tail else head
    return (
        f'{{"v":1,"decision_id":{_quote(decision_id)},"request_id":{request_id},'
        f'"connection_id":"{request.connection_id}","vehicle_id":"{request.vehicle_id}",'
        f'"kind":"{request.kind}","target":{_quote(request.target)},"params":{_params(request.params)},{error},'
        f'"decided_at":"{decided_at}","entry_id":{"null" if entry_id is None else _quote(entry_id)},'
        f'"app_id":{"null" if app_id is None else _quote(app_id)}}}'
    )


def _params(params: dict[str, ParamValue] | None) -> str:
    """Command arguments as JSON (rare: most requests are signals, which have none)."""
    return "null" if params is None else json.dumps(params, separators=(",", ":"))


def _fragments(decision: Decision) -> tuple[str, str]:
    """The decision's part of the JSON, around the request id; from pydantic's own serialization, so that both
    encoders agree by construction. Kept on the decision (one per target and outcome, shared by every request)."""
    head = f'"outcome":"{decision.outcome.value}","permission":{json.dumps(decision.permission)},"error":'
    tail = ""
    if decision.problem is None:
        head += "null"
    else:
        error = decision.problem.for_request(_REQUEST_ID_SLOT).model_dump_json()
        before, tail = error.split(json.dumps(_REQUEST_ID_SLOT))
        head += before
    object.__setattr__(decision, "wire_fragments", (head, tail))
    return head, tail


@dataclass(frozen=True, slots=True)
class Rejection:
    """A payload that is not a request: the request id to answer under, why, and what of it can be echoed."""

    request_id: str
    reason: str
    echo: Mapping[str, str]
    permission: str | None = None
    """The permission of the target it names, when that is a known signal or command."""


def rejection_message(rejection: Rejection, decision_id: str, decided_at: str, entry_id: str) -> DecisionMessage:
    """The REJECTED decision for a payload that is not a request."""
    echo = rejection.echo
    kind = echo.get("kind")
    return DecisionMessage(
        decision_id=decision_id,
        request_id=rejection.request_id,
        connection_id=echo.get("connection_id"),
        vehicle_id=echo.get("vehicle_id"),
        kind=kind if kind in ("signal", "command") else None,  # type: ignore[arg-type]
        target=echo.get("target"),
        outcome=Outcome.REJECTED,
        permission=rejection.permission,
        error=problems.rejected(rejection.reason).for_request(rejection.request_id),
        decided_at=decided_at,  # type: ignore[arg-type]
        entry_id=entry_id,
    )


def encode_rejection(rejection: Rejection, decision_id: str, decided_at: str, entry_id: str) -> bytes:
    return rejection_message(rejection, decision_id, decided_at, entry_id).encode()


def dead_letter_message(
    stream: str, entry_id: bytes, fields: Mapping[bytes, bytes], *, deliveries: int, reason: str, now: datetime
) -> DeadLetterMessage:
    """An entry given up on, with its original fields: UTF-8 ones as text, the others base64-encoded."""
    text: dict[str, str] = {}
    binary: dict[str, str] = {}
    for name, value in fields.items():
        key = name.decode(errors="backslashreplace")
        try:
            text[key] = value.decode()
        except UnicodeDecodeError:
            binary[key] = base64.b64encode(value).decode()
    return DeadLetterMessage(
        entry_id=entry_id.decode(),
        stream=stream,
        fields=text,
        binary_fields=binary,
        reason=f"delivered {deliveries} times; last failure: {reason}",
        deliveries=deliveries,
        dead_at=now,
    )


def encode_dead_letter(
    stream: str, entry_id: bytes, fields: Mapping[bytes, bytes], *, deliveries: int, reason: str, now: datetime
) -> bytes:
    return dead_letter_message(stream, entry_id, fields, deliveries=deliveries, reason=reason, now=now).encode()


def response_message(
    *,
    response_id: str,
    request_id: str,
    decision_id: str,
    connection_id: str,
    vehicle_id: str,
    kind: Kind,
    target: str,
    body: dict[str, Any] | None,
    oem_updated_at: datetime | None,
    retrieved_at: datetime,
    problem: Problem | None,
    responded_at: datetime,
    retry_after_s: int | None = None,
) -> ResponseMessage:
    """The reference encoder of a vehicle's response: the message as published on `{prefix}:responses`."""
    return ResponseMessage(
        response_id=response_id,
        request_id=request_id,
        decision_id=decision_id,
        connection_id=connection_id,
        vehicle_id=vehicle_id,
        kind=kind,
        target=target,
        status=ResponseStatus.SUCCESS if problem is None else ResponseStatus.ERROR,
        body=body,
        oem_updated_at=oem_updated_at,
        retrieved_at=retrieved_at,
        error=None if problem is None else problem.for_request(request_id),
        retry_after_s=retry_after_s,
        responded_at=responded_at,
    )


def encode_response(
    *,
    response_id: str,
    request_id: str,
    decision_id: str,
    connection_id: str,
    vehicle_id: str,
    kind: Kind,
    target: str,
    body: dict[str, Any] | None,
    oem_updated_at: datetime | None,
    retrieved_at: datetime,
    problem: Problem | None,
    responded_at: datetime,
    retry_after_s: int | None = None,
) -> bytes:
    """The JSON of `response_message(...)`, the vehicles service's hot path: the same bytes, by the same
    pydantic-core serializer, of a plain dict in the model's field order (validating the model first made it
    4.7 us a response, this 2.5). The caller passes what the model would accept (the decision checked the ids)."""
    error = None
    if problem is not None:
        error = _error_fields(problem) | {"requestId": request_id}  # the key keeps its place
    message = {
        "v": 1,
        "response_id": response_id,
        "request_id": request_id,
        "decision_id": decision_id,
        "connection_id": connection_id,
        "vehicle_id": vehicle_id,
        "kind": kind,
        "target": target,
        "status": "SUCCESS" if problem is None else "ERROR",
        "body": body,
        "oem_updated_at": oem_updated_at,
        "retrieved_at": retrieved_at,
        "error": error,
        "retry_after_s": retry_after_s,
        "responded_at": responded_at,
    }
    return to_json(message, inf_nan_mode="null")  # as the model's config has it (ser_json_inf_nan)


@cache
def _error_fields(problem: Problem) -> dict[str, Any]:
    """The error object of a problem as the model serializes it (aliases included), its request id to be set."""
    fields: dict[str, Any] = problem.for_request("").model_dump(mode="json", by_alias=True)
    return fields
