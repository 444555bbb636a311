"""The Smartcar API v2 vehicle endpoints (`/v2.0/vehicles/{id}/...`, schemas/api_v2.toml), `batch`, and any other
path or version the SDKs' `request()` may call.

- Bearer access token -> the user's connection for the vehicle (`routed_connection`); anything else is the
  AUTHENTICATION 401 of a bad token. Then the endpoint's requests go through the pipeline (services/http/
  api_v2/answer.py): no handler authorizes or reads vehicle state itself.
- `SC-Unit-System: imperial` converts distances, pressures, volumes and temperatures; the answer echoes the unit
  system in `sc-unit-system`, with `sc-data-age` and `sc-fetched-at` from the vehicle's response.
- API version `1.0` answers the same endpoints with v1 errors (`{error, message, code, statusCode, requestId}`);
  any other version but `2.0` is RESOURCE_NOT_FOUND / VERSION 404, an unknown path RESOURCE_NOT_FOUND / PATH 404
  (Smartcar's catalogue types: fleetgate's wording).
- `POST batch` `{"requests": [{"path": "/odometer"}, ...]}`: each path its own call through the pipeline, answered
  together as `{"responses": [{path, code, headers, body}]}`; a path that is no v2 GET endpoint fails the whole
  batch with VALIDATION / PARAMETER 400, as Smartcar does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Request
from fastapi.responses import JSONResponse
from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import Route

from schemas.api_v2 import Endpoint, get_endpoints
from schemas.connection import Connection
from schemas.problems import (
    HTTP_AUTHENTICATION,
    HTTP_NOT_FOUND,
    HTTP_VALIDATION,
    HTTP_VALIDATION_PARAMETER,
    HTTP_VERSION_NOT_FOUND,
    HttpSmartcarError,
)
from services.errors import NotFoundError
from services.http.api_v2.answer import Answer, answer_of, calls_for, problem_answer
from services.http.api_v2.bodies import BodyError, Query
from services.http.api_v2.models import MODELS, ActionResult, BatchResult
from services.http.auth import parse_bearer
from services.http.context import HttpContext, get_context
from services.http.errors import DEFAULT_APP_NAME, request_id
from services.http.identity import Grant
from services.http.revocation import routed_connection
from services.registry import TokenGrant

V2 = "2.0"
V1 = "1.0"
UNIT_HEADER = "sc-unit-system"
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": HttpSmartcarError, "description": "VALIDATION: a bad body, parameter or unit system"},
    401: {
        "model": HttpSmartcarError,
        "description": "AUTHENTICATION: bad token, or a vehicle the token does not reach",
    },
    403: {"model": HttpSmartcarError, "description": "PERMISSION: the connection lacks the endpoint's permission"},
    409: {"model": HttpSmartcarError, "description": "VEHICLE_STATE: the vehicle refused (asleep, doors open, ...)"},
    429: {"model": HttpSmartcarError, "description": "RATE_LIMIT / VEHICLE, with retry-after"},
    501: {"model": HttpSmartcarError, "description": "COMPATIBILITY / VEHICLE_NOT_CAPABLE"},
    502: {
        "model": HttpSmartcarError,
        "description": "UPSTREAM: the vehicle did not answer in time, or an upstream fault",
    },
}
MAX_VEHICLE_ID = 128
Context = Annotated[HttpContext, Depends(get_context)]
VehicleId = Annotated[str, Path(min_length=1, max_length=MAX_VEHICLE_ID)]


async def call_endpoint(
    context: HttpContext,
    grant: TokenGrant,
    connection: Connection,
    endpoint: Endpoint,
    *,
    http_request_id: str,
    body: Mapping[str, Any] | None,
    query: Query,
) -> Answer:
    """One endpoint's requests through the pipeline, and the HTTP answer they make."""
    try:
        calls = calls_for(endpoint, connection.id, connection.vehicle_id, body)
    except BodyError:
        return problem_answer(HTTP_VALIDATION_PARAMETER, http_request_id)
    replies = await context.pipeline.call_many(calls)
    app_name = DEFAULT_APP_NAME
    if any(r.response is None or r.response.get("status") != "SUCCESS" for r in replies):
        app_name = await _app_name(context, grant.app_id)
    return answer_of(endpoint, replies, query, http_request_id, app_name)


async def _app_name(context: HttpContext, app_id: str) -> str:
    try:
        return (await context.apps.get(app_id)).name
    except NotFoundError:
        return DEFAULT_APP_NAME


async def _query(context: HttpContext, request: Request, endpoint: Endpoint | None, vehicle_id: str) -> Query:
    params = dict(request.query_params)
    imperial = request.headers.get(UNIT_HEADER, "metric").strip().lower() == "imperial"
    if endpoint is not None and endpoint.body == "attributes":
        vehicle = await context.registry.vehicle(vehicle_id)
        return Query(vehicle_id, vehicle.make, vehicle.model, vehicle.year, imperial, params)
    return Query(vehicle_id, imperial=imperial, params=params)


async def _json_body(request: Request) -> Mapping[str, Any] | None:
    """The request's JSON object; {} for none; None for a body that is not a JSON object."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _respond(answer: Answer, version: str = V2) -> JSONResponse:
    body = answer.body
    if version == V1 and not answer.ok and isinstance(body, dict):
        body = v1_error(body)
    return JSONResponse(body, status_code=answer.status, headers=answer.headers)


def v1_error(body: Mapping[str, Any]) -> dict[str, Any]:
    """A v2 error in API v1's shape, `{error, message, code, statusCode, requestId}` (error: `<type>_error`, lower
    case; fleetgate's mapping of the v2 types)."""
    return {
        "error": f"{str(body.get('type', 'server')).lower()}_error",
        "message": body.get("description"),
        "code": body.get("code"),
        "statusCode": body.get("statusCode"),
        "requestId": body.get("requestId"),
    }


async def serve(
    request: Request, context: HttpContext, grant: TokenGrant, *, vehicle_id: str, path: str, version: str = V2
) -> JSONResponse:
    """Answer `METHOD /v{version}/vehicles/{vehicle_id}/{path}` for a valid token."""
    rid = request_id(request)
    if version not in (V1, V2):
        return _respond(problem_answer(HTTP_VERSION_NOT_FOUND, rid), version)
    path = path.strip("/")
    is_batch = request.method == "POST" and path == "batch"
    endpoint = None if is_batch else get_endpoints().find(request.method, path)
    if endpoint is None and not is_batch:
        return _respond(problem_answer(HTTP_NOT_FOUND, rid), version)
    assert grant.user_id is not None
    connection = await routed_connection(context, grant.app_id, grant.user_id, vehicle_id)
    if connection is None:
        return _respond(problem_answer(HTTP_AUTHENTICATION, rid), version)
    body = await _json_body(request) if request.method == "POST" else None
    if request.method == "POST" and body is None:
        return _respond(problem_answer(HTTP_VALIDATION, rid), version)
    if is_batch:
        return await _batch(request, context, grant, connection=connection, body=body or {}, rid=rid)
    assert endpoint is not None
    query = await _query(context, request, endpoint, vehicle_id)
    answer = await call_endpoint(context, grant, connection, endpoint, http_request_id=rid, body=body, query=query)
    return _respond(answer, version)


async def _batch(
    request: Request,
    context: HttpContext,
    grant: TokenGrant,
    *,
    connection: Connection,
    body: Mapping[str, Any],
    rid: str,
) -> JSONResponse:
    items = body.get("requests")
    paths: list[str] = []
    endpoints: list[Endpoint] = []
    if not isinstance(items, list) or not items:
        return _respond(problem_answer(HTTP_VALIDATION_PARAMETER, rid))
    for item in items:
        path = item.get("path") if isinstance(item, dict) else None
        endpoint = get_endpoints().find("GET", path.split("?")[0].strip("/")) if isinstance(path, str) else None
        if endpoint is None:
            return _respond(problem_answer(HTTP_VALIDATION_PARAMETER, rid))
        assert isinstance(path, str)
        paths.append(path)
        endpoints.append(endpoint)
    query = await _query(context, request, None, connection.vehicle_id)
    needs_facts = any(e.body == "attributes" for e in endpoints)
    facts = (
        await _query(context, request, get_endpoints().find("GET", ""), connection.vehicle_id) if needs_facts else query
    )
    answers = await asyncio.gather(
        *(
            call_endpoint(
                context,
                grant,
                connection,
                endpoint,
                http_request_id=rid,
                body=None,
                query=facts if endpoint.body == "attributes" else query,
            )
            for endpoint in endpoints
        )
    )
    responses = [
        {"path": path, "code": answer.status, "headers": _item_headers(answer), "body": answer.body}
        for path, answer in zip(paths, answers, strict=True)
    ]
    unit = "imperial" if query.imperial else "metric"
    return JSONResponse({"responses": responses}, headers={UNIT_HEADER: unit})


def _item_headers(answer: Answer) -> dict[str, str]:
    """A batch item's headers: Smartcar's sc-* ones (and `Retry-After`, exact case: the SDK looks it up so)."""
    headers = {k: v for k, v in answer.headers.items() if k.startswith("sc-")}
    if "retry-after" in answer.headers:
        headers["Retry-After"] = answer.headers["retry-after"]
    return headers


def _documented(endpoint: Endpoint) -> Callable[..., Awaitable[JSONResponse]]:
    async def handler(request: Request, context: Context, grant: Grant, vehicle_id: VehicleId) -> JSONResponse:
        return await serve(request, context, grant, vehicle_id=vehicle_id, path=endpoint.path)

    handler.__name__ = f"{endpoint.method.lower()}_{endpoint.path.replace('/', '_') or 'attributes'}"
    return handler


def _served(path: str | None) -> Callable[[Request], Awaitable[JSONResponse]]:
    """The Starlette endpoint of one v2 path (None: any path and version, from the route's parameters): what the
    documented route's handler does, with the token and the vehicle id read here instead of by FastAPI's
    dependency injection."""

    async def handler(request: Request) -> JSONResponse:
        params = request.path_params
        vehicle_id = str(params["vehicle_id"])
        if len(vehicle_id) > MAX_VEHICLE_ID:
            return _respond(problem_answer(HTTP_VALIDATION_PARAMETER, request_id(request)))
        context: HttpContext = request.app.state.context
        version = str(params.get("version", V2))
        token = parse_bearer(request.headers.get("authorization"))
        grant = None if token is None else await context.lookups.access(context.tokens, token)
        if grant is None or grant.user_id is None:
            return _respond(problem_answer(HTTP_AUTHENTICATION, request_id(request)), version)
        path_ = str(params["path"]) if path is None else path
        return await serve(request, context, grant, vehicle_id=vehicle_id, path=path_, version=version)

    return handler


_ACTION_BODY = {"type": "object", "required": ["action"], "properties": {"action": {"type": "string"}}}
_BODIES: dict[str, dict[str, Any]] = {
    "charge_limit_params": {
        "type": "object",
        "required": ["limit"],
        "properties": {"limit": {"type": "number", "minimum": 0.5, "maximum": 1, "example": 0.7}},
    },
    "destination_params": {
        "type": "object",
        "required": ["latitude", "longitude"],
        "properties": {
            "latitude": {"type": "number", "minimum": -90, "maximum": 90},
            "longitude": {"type": "number", "minimum": -180, "maximum": 180},
        },
    },
}


def _request_body(endpoint: Endpoint) -> dict[str, Any] | None:
    if endpoint.method != "POST":
        return None
    if endpoint.commands is not None:
        schema = {**_ACTION_BODY, "properties": {"action": {"type": "string", "enum": list(endpoint.commands)}}}
    else:
        schema = _BODIES[endpoint.params or ""]
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["requests"],
                    "properties": {
                        "requests": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "object",
                                "required": ["path"],
                                "properties": {"path": {"type": "string", "example": "/odometer"}},
                            },
                        }
                    },
                }
            }
        },
    }
}


def documentation() -> APIRouter:
    """The v2 endpoints as FastAPI routes, generated from schemas/api_v2.toml, and batch: they make the OpenAPI
    document and are not mounted (`install` serves the same handlers as plain Starlette routes)."""
    routes = APIRouter(tags=["vehicles v2"])
    for endpoint in get_endpoints().endpoints:
        path = f"/v2.0/vehicles/{{vehicle_id}}/{endpoint.path}"
        routes.add_api_route(
            path,
            _documented(endpoint),
            methods=[endpoint.method],
            summary=endpoint.summary,
            responses={200: {"model": MODELS[endpoint.body] if endpoint.body else ActionResult}, **ERRORS},
            openapi_extra=_request_body(endpoint),
            response_class=JSONResponse,
        )

    async def batch(request: Request, context: Context, grant: Grant, vehicle_id: VehicleId) -> JSONResponse:
        return await serve(request, context, grant, vehicle_id=vehicle_id, path="batch")

    routes.add_api_route(
        "/v2.0/vehicles/{vehicle_id}/batch",
        batch,
        methods=["POST"],
        summary="Several GET endpoints in one call, each answered on its own",
        responses={200: {"model": BatchResult}, **ERRORS},
        openapi_extra=_BATCH_BODY,
        response_class=JSONResponse,
    )
    return routes


class _DottedVersion(Convertor[str]):
    """`1.0`, `2.0`, `9.9`: what the v1/v2 SDKs put after `/v`; never `3` (API v3's paths are its own)."""

    regex = r"[0-9]+\.[0-9]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("dotted_version", _DottedVersion())


def install(app: FastAPI) -> None:
    """Serve the v2 vehicle endpoints as plain Starlette routes ahead of every other route (the vehicle API is
    what apps call most: FastAPI's dependency injection and a walk past the other routes cost about a quarter of
    the API process's CPU per call, python -m bench.api), and the catch-all for other paths and versions after
    every other route. `documentation()` documents them."""
    methods: dict[str, list[str]] = {}
    for endpoint in get_endpoints().endpoints:
        methods.setdefault(endpoint.path, []).append(endpoint.method)
    served = [Route(f"/v2.0/vehicles/{{vehicle_id}}/{path}", _served(path), methods=m) for path, m in methods.items()]
    served.append(Route("/v2.0/vehicles/{vehicle_id}/batch", _served("batch"), methods=["POST"]))
    app.router.routes[:0] = served
    app.router.routes.append(
        Route(
            "/v{version:dotted_version}/vehicles/{vehicle_id}/{path:path}",
            _served(None),
            methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        )
    )
