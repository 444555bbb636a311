"""API v3: a vehicle, its signals and commands, in the shape Smartcar really sends (shapes.py).

Every signal and command goes through the pipeline (services/http/pipeline.py): the gatekeeper decides each one,
the vehicle answers the allowed ones. No handler authorizes or reads vehicle state on its own.

- `GET /v3/vehicles/{id}`: the vehicle's registry record (make, model, year, powertrainType, mode) as `data`: the
  same resource every signal response carries in `included.vehicle` (no vehicle data: no pipeline call, and no
  permission beyond the connection, as `included.vehicle` needs none either: fleetgate's choice).
- `GET /v3/vehicles/{id}/signals`: every signal of the catalog, one request per signal sent together
  (`call_many`), each decided on its own: SUCCESS, ERROR with its error (PERMISSION for an ungranted one,
  VEHICLE_NOT_CAPABLE for one the vehicle cannot have, never PERMISSION then; a vehicle's VEHICLE_STATE error
  keeps the stale body; UPSTREAM/NO_RESPONSE for a request nobody answered in time), UNAVAILABLE for no value.
- `GET /v3/vehicles/{id}/signals/{code}`: one signal wrapped `{"data": ..., "included": {"vehicle": ...}}`. Its
  per-signal errors stay in the 200 body as in the list; a call nobody answered is a top-level 502
  UPSTREAM/NO_RESPONSE, a vehicle's RATE_LIMIT a 429 with `retry-after`; an unknown code 404.
- `POST /v3/vehicles/{id}/commands/{group}/{name}` (the catalog's commands with a v3 endpoint), parameters as
  `{"data": {"attributes": {...}}}`: a `command-execution` resource, status SUCCESS or ERROR (the vehicle's
  error in `status.error`); a denied command is a top-level error (PERMISSION 403, VEHICLE_NOT_CAPABLE 501,
  VALIDATION 400 for bad parameters), no answer 502, RATE_LIMIT 429.
- Auth: `Authorization: Bearer` with a user's access token, or an application token (client credentials) with
  `sc-user-id` naming the user. fleetgate's choices: with an app token a missing `sc-user-id` is VALIDATION 400
  (the request is incomplete; the credentials are fine); with a user's token `sc-user-id` is optional and, when
  sent, must be the token's user (else 401). A vehicle the caller does not reach (another user's or app's,
  revoked, unknown) is AUTHENTICATION 401, as a bad token, so nothing tells whether it exists.
- Errors are v3 top-level documents `{"errors": [...]}` (shapes.error_document), also for unknown paths and
  bad parameters under /v3/.
- Units are metric whatever `sc-unit-system` says (fleetgate's: the v3 conversion is not built).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from schemas.catalog import Command, Signal, get_catalog
from schemas.problems import (
    HTTP_AUTHENTICATION,
    HTTP_METHOD_NOT_ALLOWED,
    HTTP_NOT_FOUND,
    HTTP_PERMISSION,
    HTTP_SERVER_INTERNAL,
    HTTP_VALIDATION,
    HTTP_VALIDATION_PARAMETER,
    UPSTREAM_PROBLEMS,
    Problem,
)
from services.errors import NotFoundError
from services.http.api_v3.shapes import error_document, iso, problem_error, problem_of, signal_error, signal_resource
from services.http.api_v3.shapes import vehicle_resource as vehicle_document
from services.http.auth import access_bearer
from services.http.context import HttpContext, get_context
from services.http.links import ok, operation_ref
from services.http.pipeline import ALLOWED, Call, Reply
from services.http.revocation import routed_connection
from services.registry import TokenGrant

PREFIX = "/v3/"
NO_RESPONSE = UPSTREAM_PROBLEMS["NO_RESPONSE"]
COMMAND_ENDPOINT = "v3 commands/"
APP_TOKEN_NEEDS_USER = "An application token needs the sc-user-id header naming the user."
router = APIRouter(tags=["vehicle API v3"])
V3_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": f'{what}: `{{"errors": [{{status, type, code, title, detail, ...}}]}}`'}
    for status, what in {
        400: "VALIDATION (a bad body or parameter; an app token without sc-user-id)",
        401: "AUTHENTICATION (a bad token, or a vehicle the caller does not reach)",
        404: "RESOURCE_NOT_FOUND (an unknown signal code or command)",
        429: "RATE_LIMIT (the vehicle's), with retry-after",
        502: "UPSTREAM/NO_RESPONSE: no answer in time",
    }.items()
}


class V3Error(Exception):
    """Answered as a v3 error document with the problem's status."""

    def __init__(self, problem: Problem, *, detail: str | None = None, retry_after_s: int | None = None) -> None:
        super().__init__(problem.code or problem.type)
        self.problem, self.detail, self.retry_after_s = problem, detail, retry_after_s


@dataclass(frozen=True, slots=True)
class Reached:
    """A vehicle the caller reaches: the connection to send its calls under, and the vehicle's resource."""

    connection_id: str
    vehicle_id: str
    vehicle: dict[str, Any]


Context = Annotated[HttpContext, Depends(get_context)]
VehicleId = Annotated[str, Path(min_length=1, max_length=128)]


async def v3_caller(
    context: Context,
    token: Annotated[str | None, Depends(access_bearer)],
    sc_user_id: Annotated[
        str | None, Header(alias="sc-user-id", description="the user (needed with an app token)")
    ] = None,
) -> TokenGrant:
    """The app and user a call is for: a user's access token, or an application token and `sc-user-id`."""
    if token is None:
        raise V3Error(HTTP_AUTHENTICATION)
    grant = await context.lookups.access(context.tokens, token)
    if grant is not None and grant.user_id is not None:
        if sc_user_id is not None and sc_user_id != grant.user_id:
            raise V3Error(HTTP_AUTHENTICATION)
        return grant
    app_grant = await context.tokens.app_token(token)
    if app_grant is None:
        raise V3Error(HTTP_AUTHENTICATION)
    if not sc_user_id:
        raise V3Error(HTTP_VALIDATION_PARAMETER, detail=APP_TOKEN_NEEDS_USER)
    return TokenGrant(app_grant.app_id, sc_user_id)


Caller = Annotated[TokenGrant, Depends(v3_caller)]


async def reach(context: HttpContext, caller: TokenGrant, vehicle_id: str) -> Reached:
    """The caller's active connection to the vehicle, or AUTHENTICATION 401 (whatever the reason)."""
    assert caller.user_id is not None
    connection = await routed_connection(context, caller.app_id, caller.user_id, vehicle_id)
    if connection is None:
        raise V3Error(HTTP_AUTHENTICATION)
    try:
        vehicle = await context.registry.vehicle(vehicle_id)
        app = await context.apps.get(caller.app_id)
    except NotFoundError as exc:
        raise V3Error(HTTP_AUTHENTICATION) from exc
    return Reached(connection.id, vehicle_id, vehicle_document(vehicle, app.mode.value))


@router.get("/v3/vehicles/{vehicle_id}", responses=V3_ERRORS, summary="The vehicle: make, model, year, powertrain")
async def get_vehicle(caller: Caller, context: Context, vehicle_id: VehicleId) -> dict[str, Any]:
    return {"data": (await reach(context, caller, vehicle_id)).vehicle}


SIGNALS_OK = ok(
    "Every signal of the catalog",
    {
        "v3_get_signal": {
            "operationRef": operation_ref("GET", "/v3/vehicles/{vehicle_id}/signals/{code}"),
            "parameters": {"vehicle_id": "$request.path.vehicle_id", "code": "$response.body#/data/0/id"},
            "description": "The first signal on its own",
        }
    },
)


@router.get(
    "/v3/vehicles/{vehicle_id}/signals",
    responses={**V3_ERRORS, 200: SIGNALS_OK},
    summary="Every signal, each decided on its own",
)
async def get_signals(caller: Caller, context: Context, vehicle_id: VehicleId) -> dict[str, Any]:
    reached = await reach(context, caller, vehicle_id)
    signals = get_catalog().signals
    calls = [Call(reached.connection_id, vehicle_id, "signal", s.code) for s in signals]
    replies = await context.pipeline.call_many(calls)
    now = datetime.now(UTC)
    data = [signal_of(signal, vehicle_id, reply, now) for signal, reply in zip(signals, replies, strict=True)]
    return {
        "data": data,
        "meta": {"totalCount": len(data), "pageSize": len(data), "pageNumber": 1},
        "links": {"self": f"/v3/vehicles/{vehicle_id}/signals"},
        "included": {"vehicle": reached.vehicle},
    }


@router.get("/v3/vehicles/{vehicle_id}/signals/{code}", responses=V3_ERRORS, summary="One signal")
async def get_signal(caller: Caller, context: Context, vehicle_id: VehicleId, code: str) -> JSONResponse:
    signal = next((s for s in get_catalog().signals if s.code == code), None)
    if signal is None:
        raise V3Error(HTTP_NOT_FOUND, detail=f"There is no signal {code!r}.")
    reached = await reach(context, caller, vehicle_id)
    reply = await context.pipeline.call(Call(reached.connection_id, vehicle_id, "signal", code))
    _raise_top_level(reply)
    resource = signal_of(signal, vehicle_id, reply, datetime.now(UTC))
    return JSONResponse({"data": resource, "included": {"vehicle": reached.vehicle}})


def signal_of(signal: Signal, vehicle_id: str, reply: Reply, now: datetime) -> dict[str, Any]:
    """One signal's resource from its reply (see the module's text for the statuses)."""
    if reply.timed_out:
        return signal_resource(signal, vehicle_id, status="ERROR", error=problem_error(NO_RESPONSE), ingested_at=now)
    assert reply.decision is not None
    if reply.decision.get("outcome") != ALLOWED:
        error = signal_error(reply.decision.get("error") or {})
        return signal_resource(signal, vehicle_id, status="ERROR", error=error, ingested_at=now)
    response = reply.response or {}
    body = response.get("body")
    found: dict[str, Any] = {
        "body": body,
        "retrieved_at": None if body is None else response.get("retrieved_at"),
        "oem_updated_at": None if body is None else response.get("oem_updated_at"),
        "ingested_at": response.get("responded_at") or now,
    }
    if response.get("status") != "SUCCESS":
        return signal_resource(signal, vehicle_id, status="ERROR", error=signal_error(response["error"]), **found)
    return signal_resource(signal, vehicle_id, status="SUCCESS" if body is not None else "UNAVAILABLE", **found)


def _raise_top_level(reply: Reply) -> None:
    """What a single call answers with a top-level error: no answer, a denied connection or request, a rate
    limit. A permission, capability or vehicle-state error stays the call's own."""
    if reply.timed_out:
        raise V3Error(NO_RESPONSE)
    assert reply.decision is not None
    outcome = reply.decision.get("outcome")
    if outcome in {"UNAUTHORIZED", "REJECTED"}:
        error = reply.decision.get("error") or {}
        problem = HTTP_AUTHENTICATION if outcome == "UNAUTHORIZED" else HTTP_VALIDATION_PARAMETER
        raise V3Error(problem, detail=None if outcome == "UNAUTHORIZED" else error.get("description"))
    response = reply.response or {}
    error = response.get("error") or {}
    if error.get("type") == "RATE_LIMIT":
        raise V3Error(problem_of(error), retry_after_s=response.get("retry_after_s"))


def _v3_commands() -> dict[str, Command]:
    """`group/name` of the v3 path -> the catalog's command (those whose endpoint is a v3 command)."""
    found = {}
    for command in get_catalog().commands:
        if command.endpoint.startswith(COMMAND_ENDPOINT):
            found[command.endpoint.removeprefix(COMMAND_ENDPOINT)] = command
    return found


COMMANDS = _v3_commands()
COMMAND_BODY = {
    "required": False,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"data": {"type": "object", "properties": {"attributes": {"type": "object"}}}},
            },
            "example": {"data": {"attributes": {"percent": 80}}},
        }
    },
}


@router.post(
    "/v3/vehicles/{vehicle_id}/commands/{group}/{name}",
    responses=V3_ERRORS,
    summary="Run a command (security/lock, charge/set-limit, ...)",
    openapi_extra={"requestBody": COMMAND_BODY},
)
async def run_command(  # noqa: PLR0917 - FastAPI's parameters
    request: Request, caller: Caller, context: Context, vehicle_id: VehicleId, group: str, name: str
) -> JSONResponse:
    command = COMMANDS.get(f"{group}/{name}")
    if command is None:
        raise V3Error(HTTP_NOT_FOUND, detail=f"There is no command {group}/{name}.")
    params = await _command_params(request)
    reached = await reach(context, caller, vehicle_id)
    executed_at = datetime.now(UTC)
    # parameters are checked by the gatekeeper (REJECTED: VALIDATION 400 naming the problem)
    reply = await context.pipeline.call(
        Call(reached.connection_id, vehicle_id, "command", command.name, params or None)
    )
    _raise_top_level(reply)
    assert reply.decision is not None
    if reply.decision.get("outcome") != ALLOWED:
        raise V3Error(problem_of(reply.decision.get("error") or {}))
    response = reply.response or {}
    completed = response.get("responded_at") or datetime.now(UTC).isoformat()
    return JSONResponse(_execution(reply.request_id, group, name, params, response, executed_at, completed))


async def _command_params(request: Request) -> dict[str, Any]:
    """The command's arguments: `data.attributes` of the JSON body; none for an empty body; else VALIDATION."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = await request.json()
    except ValueError as exc:
        raise V3Error(HTTP_VALIDATION, detail="The body is not JSON.") from exc
    data = body.get("data", {}) if isinstance(body, dict) else None
    attributes = data.get("attributes", {}) if isinstance(data, dict) else None
    if not isinstance(attributes, dict):
        raise V3Error(HTTP_VALIDATION, detail='A command\'s body is {"data": {"attributes": {...}}}.')
    return attributes


def _execution(  # noqa: PLR0917 - one response's parts
    request_id: str,
    group: str,
    name: str,
    params: dict[str, Any],
    response: dict[str, Any],
    executed_at: datetime,
    completed: str,
) -> dict[str, Any]:
    ok = response.get("status") == "SUCCESS"
    status: dict[str, Any] = (
        {"value": "SUCCESS"} if ok else {"value": "ERROR", "error": signal_error(response["error"])}
    )
    done = datetime.fromisoformat(completed.replace("Z", "+00:00"))
    attributes: dict[str, Any] = {"commandType": f"{group}-{name}", "status": status, "executionMode": "sync"}
    if params:
        attributes["parameters"] = params
    return {
        "data": {
            "id": f"exec_{request_id}",
            "type": "command-execution",
            "attributes": attributes,
            "meta": {
                "executedAt": iso(executed_at),
                "completedAt": iso(done),
                "durationInSeconds": max(0, round((done - executed_at).total_seconds())),
            },
        }
    }


def _v3_response(request: Request, error: V3Error) -> JSONResponse:
    headers = {} if error.retry_after_s is None else {"retry-after": str(error.retry_after_s)}
    body = error_document(error.problem, detail=error.detail)
    body["errors"][0]["requestId"] = getattr(request.state, "request_id", None)
    return JSONResponse(body, status_code=error.problem.status_code, headers=headers)


_BY_STATUS = {
    401: HTTP_AUTHENTICATION,
    403: HTTP_PERMISSION,
    404: HTTP_NOT_FOUND,
    405: HTTP_METHOD_NOT_ALLOWED,
}

Handler = Callable[[Request, Exception], Awaitable[Response]]


def install(app: FastAPI) -> None:
    """Add the v3 routes, and answer every error under /v3/ (unknown paths and bad parameters included) with a v3
    error document; elsewhere the app's handlers answer as before."""
    app.include_router(router)
    previous_http: Handler = app.exception_handlers[StarletteHTTPException]  # type: ignore[assignment]
    previous_validation: Handler = app.exception_handlers[RequestValidationError]  # type: ignore[assignment]

    async def v3_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, V3Error)
        return _v3_response(request, exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        if not request.url.path.startswith(PREFIX):
            return await previous_http(request, exc)
        status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
        problem = _BY_STATUS.get(status, HTTP_VALIDATION if status < 500 else HTTP_SERVER_INTERNAL)
        return _v3_response(request, V3Error(problem))

    async def validation_error(request: Request, exc: Exception) -> Response:
        if not request.url.path.startswith(PREFIX):
            return await previous_validation(request, exc)
        return _v3_response(request, V3Error(HTTP_VALIDATION_PARAMETER))

    app.add_exception_handler(V3Error, v3_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
