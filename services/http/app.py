"""The ASGI app: `create_app(context)` builds it; routers of Connect, tokens and the API are added here."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import BaseRoute

from services.http import (
    api_v2,
    api_v3,
    compatibility,
    dashboard,
    identity,
    management,
    oauth_token,
    subscriptions,
)
from services.http.connect import router as connect_router
from services.http.context import HttpContext, get_context
from services.http.docs_page import add_docs_page
from services.http.errors import RequestIdMiddleware, install_error_handlers
from services.redis_client import REDIS_ERRORS

HEALTH_TIMEOUT_S = 2.0
_UNHEALTHY: tuple[type[Exception], ...] = (*REDIS_ERRORS, TimeoutError, OSError)


def create_app(context: HttpContext) -> FastAPI:
    """The app for one process. The docs page (/docs) is Swagger UI from this package's own assets (FastAPI's
    default loads them from a CDN and is blank offline); no ReDoc; the OpenAPI document is at /openapi.json."""
    app = FastAPI(
        title="fleetgate",
        summary="Smartcar-compatible Connect, tokens and vehicle API, with least-privilege gatekeeping.",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan,
    )
    app.state.context = context
    install_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)
    static = resources.files("services.http").joinpath("static")
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    app.add_api_route(
        "/healthz", healthz, methods=["GET"], tags=["operations"], summary="200 while Redis answers, else 503"
    )
    app.include_router(connect_router)
    app.include_router(oauth_token.router)
    app.include_router(identity.router)
    app.include_router(management.router)
    app.include_router(subscriptions.router)
    api_v3.install(app)
    app.include_router(compatibility.router)
    dashboard.install(app, context)
    add_docs_page(app)
    api_v2.install(app)  # last: its catch-all for other paths and API versions must follow every other route
    app.openapi = _openapi(app, documented_only=api_v2.documentation().routes)  # type: ignore[method-assign]
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The vehicle API's pipeline starts with its first call, the live decisions feed with its first subscriber;
    both stop with the server."""
    yield
    context: HttpContext = app.state.context
    await context.live.stop()
    await context.pipeline.stop()


def _openapi(app: FastAPI, *, documented_only: Sequence[BaseRoute]) -> Callable[[], dict[str, Any]]:
    """FastAPI's document of the app's routes and of `documented_only` (routes served by plain Starlette routes,
    which FastAPI does not document), built once. FastAPI documents a 422 on every route with parameters; this
    app answers Smartcar's VALIDATION 400 instead (services/http/errors.py), which each route documents: the 422s
    and their schemas are dropped."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                summary=app.summary,
                routes=[*app.routes, *documented_only],
                separate_input_output_schemas=app.separate_input_output_schemas,
            )
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi


async def healthz(context: Annotated[HttpContext, Depends(get_context)]) -> JSONResponse:
    """200 `{"status": "ok"}` while Redis answers PING, 503 `{"status": "unavailable"}` otherwise."""
    try:
        await asyncio.wait_for(context.redis.ping(), HEALTH_TIMEOUT_S)
    except _UNHEALTHY:
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})
