"""One v2 endpoint call through the pipeline: its requests (one per signal, or the command), and the HTTP answer
made of their decisions and responses (pure, below `answer()`).

What an app sees is what the gatekeeper decided and what the vehicle answered:
- a denied request answers with Smartcar's error for its outcome (exact catalogue strings): REJECTED is VALIDATION
  400, UNAUTHORIZED the AUTHENTICATION 401 a bad token gets, VEHICLE_NOT_CAPABLE COMPATIBILITY 501, PERMISSION_DENIED
  PERMISSION 403;
- an allowed one that the vehicle refused answers with the vehicle's error (VEHICLE_STATE 409, UPSTREAM 502,
  RATE_LIMIT 429 with `retry-after`), as the vehicles service wrote it;
- a request nobody answered within FLEETGATE_API_TIMEOUT_S is UPSTREAM / NO_RESPONSE 502.
An endpoint of several signals fails with the first of its requests' errors in that order (the decision precedence
of docs/contract.md, then the vehicle's, then the timeout); an optional signal the vehicle is not capable of is
left out instead. Every error's `requestId` is the HTTP response's `SC-Request-Id`; the requests' own ids on the
streams are in the `fleetgate-request-ids` header (comma-separated), so HTTP and the streams can be matched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from schemas.api_v2 import Endpoint
from schemas.problems import (
    HTTP_AUTHENTICATION,
    HTTP_PERMISSION,
    HTTP_VALIDATION,
    HTTP_VALIDATION_PARAMETER,
    HTTP_VEHICLE_NOT_CAPABLE,
    UPSTREAM_PROBLEMS,
    Problem,
)
from services.http.api_v2.bodies import GET_BUILDERS, PARAM_BUILDERS, BodyError, Json, Query
from services.http.errors import error_body
from services.http.pipeline import Call, Reply

PIPELINE_IDS_HEADER = "fleetgate-request-ids"
ACTION_DONE = {"status": "success", "message": "Successfully sent request to vehicle"}

_DENIED: dict[str, tuple[int, Problem]] = {
    "UNAUTHORIZED": (1, HTTP_AUTHENTICATION),
    "VEHICLE_NOT_CAPABLE": (2, HTTP_VEHICLE_NOT_CAPABLE),
    "PERMISSION_DENIED": (3, HTTP_PERMISSION),
}
_VEHICLE_ERROR_RANK = 4
_TIMEOUT_RANK = 5


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer: status, JSON body, headers (besides SC-Request-Id, which the middleware sets)."""

    status: int
    body: Json
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status < 400


@dataclass(frozen=True, slots=True)
class Failure:
    """One request's error, ranked by precedence (lower first)."""

    rank: int
    body: dict[str, Any]
    retry_after_s: int | None = None


def problem_answer(problem: Problem, request_id: str, app_name: str | None = None) -> Answer:
    return Answer(problem.status_code, error_body(problem, request_id, app_name=app_name))


def calls_for(endpoint: Endpoint, connection_id: str, vehicle_id: str, body: Mapping[str, Any] | None) -> list[Call]:
    """The endpoint's requests. Raises BodyError for a POST body that names no known action or bad arguments."""
    if endpoint.method == "GET":
        return [Call(connection_id, vehicle_id, "signal", code) for code in endpoint.targets]
    given = body or {}
    if endpoint.commands is not None:
        action = given.get("action")
        command = endpoint.commands.get(action) if isinstance(action, str) else None
        if command is None:
            raise BodyError(f"action must be one of {', '.join(endpoint.commands)}")
        return [Call(connection_id, vehicle_id, "command", command)]
    assert endpoint.command is not None
    assert endpoint.params is not None
    return [Call(connection_id, vehicle_id, "command", endpoint.command, PARAM_BUILDERS[endpoint.params](given))]


def failure_of(reply: Reply, http_request_id: str, app_name: str) -> Failure | None:
    """The reply's error, in the HTTP answer's terms; None for a success."""
    decision = reply.decision
    if decision is None or reply.timed_out:
        return Failure(_TIMEOUT_RANK, error_body(UPSTREAM_PROBLEMS["NO_RESPONSE"], http_request_id, app_name=app_name))
    outcome = decision.get("outcome")
    if outcome == "REJECTED":
        error = decision.get("error") or {}
        problem = HTTP_VALIDATION_PARAMETER if error.get("code") == "PARAMETER" else HTTP_VALIDATION
        return Failure(0, error_body(problem, http_request_id, app_name=app_name))
    if outcome in _DENIED:
        rank, problem = _DENIED[str(outcome)]
        return Failure(rank, error_body(problem, http_request_id, app_name=app_name))
    response = reply.response or {}
    error = response.get("error")
    if response.get("status") == "SUCCESS" or not isinstance(error, dict):
        return None
    body = {**error, "requestId": http_request_id}
    for key in ("description", "suggestedUserMessage"):
        if isinstance(body.get(key), str):
            body[key] = body[key].replace("<app name>", app_name)
    retry = response.get("retry_after_s")
    return Failure(_VEHICLE_ERROR_RANK, body, retry if isinstance(retry, int) else None)


def answer_of(
    endpoint: Endpoint,
    replies: Sequence[Reply],
    query: Query,
    http_request_id: str,
    app_name: str,
) -> Answer:
    """The HTTP answer to the endpoint's replies (in the order of `endpoint.targets` for a GET); the body builder
    gets the signal bodies by role."""
    ids = {PIPELINE_IDS_HEADER: ",".join(r.request_id for r in replies)}
    failures: list[Failure] = []
    bodies: dict[str, dict[str, Any] | None] = {}
    optional = set(endpoint.optional)
    roles = endpoint.roles if endpoint.method == "GET" else ("",) * len(replies)
    for target, reply in zip(roles, replies, strict=True):
        failure = failure_of(reply, http_request_id, app_name)
        if failure is None:
            bodies[target] = (reply.response or {}).get("body")
        elif target in optional and failure.rank == _DENIED["VEHICLE_NOT_CAPABLE"][0]:
            bodies[target] = None
        else:
            failures.append(failure)
    if failures:
        first = min(failures, key=lambda f: f.rank)
        headers = dict(ids)
        if first.retry_after_s is not None:
            headers["retry-after"] = str(first.retry_after_s)
        return Answer(int(first.body.get("statusCode", 500)), first.body, headers)
    if endpoint.method == "POST":
        return Answer(200, dict(ACTION_DONE), ids)
    assert endpoint.body is not None
    try:
        body = GET_BUILDERS[endpoint.body](bodies, query)
    except BodyError:
        return Answer(400, error_body(HTTP_VALIDATION_PARAMETER, http_request_id, app_name=app_name), ids)
    headers = {**ids, "sc-unit-system": "imperial" if query.imperial else "metric"}
    responses = [r.response for r in replies if r.response is not None]
    data_ages = sorted(t for r in responses if (t := _moment(r.get("oem_updated_at"))) is not None)
    fetched = sorted(t for r in responses if (t := _moment(r.get("retrieved_at"))) is not None)
    if data_ages:
        headers["sc-data-age"] = iso_ms(data_ages[0])  # the oldest value the answer is made of
    if fetched:
        headers["sc-fetched-at"] = iso_ms(fetched[-1])
    return Answer(200, body, headers)


def _moment(stamp: Any) -> datetime | None:
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp).astimezone(UTC)
    except ValueError:
        return None


def iso_ms(moment: datetime) -> str:
    """Smartcar's header time format, `2018-06-20T01:33:37.078Z`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
