"""Smartcar v2 error responses, and the handlers that give every failure of the app that shape.

The strings are Smartcar's catalogue in schemas/problems.py (one place); this module only builds the HTTP body:
`{type, code, description, docURL, statusCode, requestId, resolution: {type}, suggestedUserMessage?}` with
`requestId` equal to the response's `SC-Request-Id` header (set by `RequestIdMiddleware`).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.problems import (
    HTTP_AUTHENTICATION,
    HTTP_METHOD_NOT_ALLOWED,
    HTTP_NOT_FOUND,
    HTTP_PERMISSION,
    HTTP_RATE_LIMIT,
    HTTP_SERVER_INTERNAL,
    HTTP_VALIDATION,
    HTTP_VALIDATION_PARAMETER,
    NO_USER_MESSAGE,
    Problem,
    for_app,
)

REQUEST_ID_HEADER = "SC-Request-Id"
DEFAULT_APP_NAME = "the app"
"""Fills Smartcar's `<app name>` placeholder in user messages when a handler does not know the app."""

log = logging.getLogger(__name__)


def request_id(request: Request) -> str:
    """The request's id: its `SC-Request-Id` response header and its errors' `requestId`."""
    found = getattr(request.state, "request_id", None)
    return found if isinstance(found, str) else str(uuid.uuid4())


def error_body(problem: Problem, request_id: str, *, app_name: str | None = None) -> dict[str, Any]:
    """The JSON body of a Smartcar v2 error; `suggestedUserMessage` only where Smartcar has one."""
    filled = for_app(problem, app_name or DEFAULT_APP_NAME)
    body = filled.for_request(request_id).model_dump(mode="json", by_alias=True)
    if problem.suggested_user_message == NO_USER_MESSAGE:
        del body["suggestedUserMessage"]
    return body


def error_response(
    request: Request,
    problem: Problem,
    *,
    description: str | None = None,
    app_name: str | None = None,
    retry_after_s: int | None = None,
) -> JSONResponse:
    """A Smartcar-shaped error response; `description` overrides Smartcar's (fleetgate's detail, say so)."""
    body = error_body(problem, request_id(request), app_name=app_name)
    if description is not None:
        body["description"] = description
    headers = {REQUEST_ID_HEADER: body["requestId"]}
    if retry_after_s is not None:
        headers["retry-after"] = str(retry_after_s)
    return JSONResponse(body, status_code=problem.status_code, headers=headers)


def authentication_error(request: Request) -> JSONResponse:
    """401 AUTHENTICATION: missing, malformed, invalid or expired credentials."""
    return error_response(request, HTTP_AUTHENTICATION)


def permission_error(request: Request) -> JSONResponse:
    """403 PERMISSION: the token lacks a permission the endpoint needs (resolution REAUTHENTICATE)."""
    return error_response(request, HTTP_PERMISSION)


def validation_error(request: Request, *, parameter: bool = False, app_name: str | None = None) -> JSONResponse:
    """400 VALIDATION: malformed (code null) or a wrong parameter (code PARAMETER)."""
    return error_response(request, HTTP_VALIDATION_PARAMETER if parameter else HTTP_VALIDATION, app_name=app_name)


def not_found_error(request: Request) -> JSONResponse:
    """404 RESOURCE_NOT_FOUND (fleetgate's wording: Smartcar publishes none for an unknown path)."""
    return error_response(request, HTTP_NOT_FOUND)


def rate_limit_error(request: Request, retry_after_s: int, *, app_name: str | None = None) -> JSONResponse:
    """429 RATE_LIMIT / SMARTCAR_API, with `retry-after` in seconds."""
    return error_response(request, HTTP_RATE_LIMIT, app_name=app_name, retry_after_s=retry_after_s)


def internal_error(request: Request, *, app_name: str | None = None) -> JSONResponse:
    """500 SERVER / INTERNAL: never a traceback."""
    return error_response(request, HTTP_SERVER_INTERNAL, app_name=app_name)


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
    if status == HTTP_NOT_FOUND.status_code:
        return not_found_error(request)
    if status == HTTP_METHOD_NOT_ALLOWED.status_code:
        return error_response(request, HTTP_METHOD_NOT_ALLOWED)
    if status == HTTP_AUTHENTICATION.status_code:
        return authentication_error(request)
    if status == HTTP_PERMISSION.status_code:
        return permission_error(request)
    if status < HTTP_SERVER_INTERNAL.status_code:
        return validation_error(request)
    return internal_error(request)


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 for a parameter or body that does not validate: Smartcar's VALIDATION / PARAMETER 400."""
    del exc
    return validation_error(request, parameter=True)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _request_validation)


class RequestIdMiddleware:
    """Gives each request a uuid4 `SC-Request-Id` (in `request.state.request_id` and on every response), and
    answers an exception no handler took with a Smartcar SERVER / INTERNAL 500 (logged here, never sent)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = rid
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"sc-request-id"]
                message = {**message, "headers": [*headers, (b"sc-request-id", rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error answering %s %s (request id %s)", scope["method"], scope["path"], rid)
            if started:
                raise  # the server closes the connection: a half-sent response cannot become an error body
            response = JSONResponse(error_body(HTTP_SERVER_INTERNAL, rid), status_code=500)
            await response(scope, receive, send_with_id)
