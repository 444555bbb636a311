"""The ASGI app in-process (httpx.ASGITransport) on fakeredis: health, request ids, Smartcar error bodies."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import fakeredis
import httpx
import pytest
from fastapi import FastAPI, Query, Request
from pydantic import BaseModel

from schemas.application import AppMode
from services.http import HttpContext, create_app
from services.http.accounts import Account, LoginRefused
from services.http.errors import rate_limit_error
from services.registry import Registry
from services.settings import Settings


class NoAccounts:
    async def login(self, email: str, password: str, *, make: str | None, mode: AppMode) -> Account:
        del email, password, make, mode
        raise LoginRefused("nobody here")


class Body(BaseModel):
    n: int


def build_app(redis: fakeredis.FakeAsyncRedis) -> FastAPI:
    settings = Settings(key_prefix="t")
    app = create_app(HttpContext(settings, redis, Registry(redis, settings.keys), NoAccounts()))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    @app.post("/typed")
    async def typed(body: Body, limit: int = Query(ge=1)) -> dict[str, int]:
        return {"n": body.n, "limit": limit}

    @app.get("/limited")
    async def limited(request: Request) -> object:
        return rate_limit_error(request, 30, app_name="Acme")

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    redis = fakeredis.FakeAsyncRedis()
    transport = httpx.ASGITransport(app=build_app(redis))
    async with httpx.AsyncClient(transport=transport, base_url="http://fleetgate.test") as http:
        yield http
    await redis.aclose()


async def test_healthz_ok_while_redis_answers(client: httpx.AsyncClient) -> None:
    """/healthz is 200 {"status": "ok"} when PING answers."""
    response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_healthz_503_when_redis_is_away() -> None:
    """/healthz is 503 when Redis does not answer."""
    server = fakeredis.FakeServer()
    server.connected = False  # fakeredis: every command raises ConnectionError
    redis = fakeredis.FakeAsyncRedis(server=server)
    transport = httpx.ASGITransport(app=build_app(redis))
    async with httpx.AsyncClient(transport=transport, base_url="http://fleetgate.test") as http:
        response = await http.get("/healthz")
    assert (response.status_code, response.json()) == (503, {"status": "unavailable"})


async def test_unhandled_exception_is_a_smartcar_500_without_traceback(client: httpx.AsyncClient) -> None:
    """An exception no handler takes answers SERVER/INTERNAL 500, Smartcar-shaped, naming nothing internal."""
    response = await client.get("/boom")
    assert response.status_code == 500
    body = response.json()
    assert (body["type"], body["code"], body["statusCode"]) == ("SERVER", "INTERNAL", 500)
    assert body["resolution"] == {"type": "RETRY_LATER"}
    assert body["requestId"] == response.headers["SC-Request-Id"]
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    assert "<app name>" not in body["suggestedUserMessage"]


async def test_fastapi_validation_errors_become_smartcar_validation_400(client: httpx.AsyncClient) -> None:
    """A body or parameter that does not validate answers VALIDATION/PARAMETER 400, not FastAPI's 422."""
    for response in (
        await client.post("/typed?limit=1", json={"n": "x"}),
        await client.post("/typed?limit=0", json={"n": 1}),
        await client.post("/typed?limit=1", content=b"{not json"),
    ):
        assert response.status_code == 400
        body = response.json()
        assert (body["type"], body["code"], body["statusCode"]) == ("VALIDATION", "PARAMETER", 400)
        assert body["description"].startswith("Your request is formatted correctly")


async def test_method_not_allowed_is_smartcar_shaped(client: httpx.AsyncClient) -> None:
    """A known path with the wrong method answers 405 with a Smartcar-shaped body."""
    response = await client.delete("/healthz")
    assert response.status_code == 405
    assert response.json()["statusCode"] == 405


async def test_rate_limit_carries_retry_after(client: httpx.AsyncClient) -> None:
    """RATE_LIMIT/SMARTCAR_API is 429 with `retry-after` and the app's name in the user message."""
    response = await client.get("/limited")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "30"
    body = response.json()
    assert (body["type"], body["code"], body["resolution"]) == ("RATE_LIMIT", "SMARTCAR_API", {"type": "RETRY_LATER"})
    assert "Acme" in body["suggestedUserMessage"]


async def test_local_docs_page_no_redoc_and_an_openapi_document(client: httpx.AsyncClient) -> None:
    """/docs is Swagger UI on this server's own assets (no CDN); ReDoc is off; /openapi.json lists /healthz."""
    page = (await client.get("/docs")).text
    assert "/static/swagger-ui/swagger-ui-bundle.js" in page
    assert "/static/swagger-ui/swagger-ui.css" in page
    assert "cdn" not in page.lower()
    assert (await client.get("/static/swagger-ui/swagger-ui-bundle.js")).status_code == 200
    assert (await client.get("/redoc")).status_code == 404
    document = (await client.get("/openapi.json")).json()
    assert "/healthz" in document["paths"]


async def test_request_id_is_a_fresh_uuid4(client: httpx.AsyncClient) -> None:
    """SC-Request-Id is a uuid4, new for each response."""
    first, second = (await client.get("/healthz")).headers, (await client.get("/healthz")).headers
    assert uuid.UUID(first["SC-Request-Id"]).version == 4
    assert first["SC-Request-Id"] != second["SC-Request-Id"]
