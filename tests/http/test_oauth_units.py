"""The token, identity and management endpoints' pure parts and wiring, in-process on fakeredis (fast tier):
header parsing, the management cursor, and the token endpoint leaving secret comparison to AppStore."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import fakeredis
import httpx
import pytest

from schemas.application import Application, AppMode
from services.http import HttpContext, create_app
from services.http.auth import BasicCredentials, parse_basic, parse_bearer
from services.http.management import decode_cursor, encode_cursor
from services.registry import AppStore, CreatedApp, Registry
from services.settings import Settings
from tests.http.test_app import NoAccounts


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (basic("client:s3cret"), BasicCredentials("client", "s3cret")),
        (basic("client:with:colons"), BasicCredentials("client", "with:colons")),
        (basic("default:"), BasicCredentials("default", "")),
        ("basic " + base64.b64encode(b"a:b").decode(), BasicCredentials("a", "b")),
        (basic("no-colon"), None),
        ("Basic not*base64", None),
        ("Basic ", None),
        ("Bearer abc", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_basic(header: str | None, expected: BasicCredentials | None) -> None:
    """Basic credentials are parsed, anything malformed is None, never an exception."""
    assert parse_basic(header) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [("Bearer tok", "tok"), ("bearer tok", "tok"), ("Bearer", None), ("Bearer a b", None), ("Basic x", None)],
)
def test_parse_bearer(header: str, expected: str | None) -> None:
    """The token of a Bearer header; None for any other shape."""
    assert parse_bearer(header) == expected


def test_basic_credentials_never_show_the_password() -> None:
    """repr() of parsed credentials hides the password (a log line or a traceback cannot leak it)."""
    assert "s3cret" not in repr(BasicCredentials("client", "s3cret"))


def test_cursor_round_trip_and_foreign_cursors() -> None:
    """A cursor names its position; strings not made by encode_cursor are None."""
    assert decode_cursor(encode_cursor((1_700_000_000_123, "c-00ff"))) == (1_700_000_000_123, "c-00ff")
    for foreign in ("", "%%", "YWJj", base64.urlsafe_b64encode(b"x:c-1").decode(), "/w"):
        assert decode_cursor(foreign) is None


@pytest.fixture
async def in_process() -> AsyncIterator[tuple[httpx.AsyncClient, CreatedApp]]:
    redis = fakeredis.FakeAsyncRedis()
    settings = Settings(key_prefix="t")
    created = await AppStore(redis, settings.keys).create("Acme", ["http://127.0.0.1:9/cb"], AppMode.TEST)
    app = create_app(HttpContext(settings, redis, Registry(redis, settings.keys), NoAccounts()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fleetgate.test") as http:
        yield http, created
    await redis.aclose()


async def test_token_endpoint_leaves_the_secret_check_to_authenticate_client(
    in_process: tuple[httpx.AsyncClient, CreatedApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The endpoint asks AppStore.authenticate_client (hmac.compare_digest over every stored hash) and follows its
    answer: refused when it says no, even for the right secret; it never compares secrets itself."""
    http, created = in_process
    calls: list[tuple[str, str]] = []
    verdicts: list[Application | None] = [None, created.app]

    async def spy(self: AppStore, client_id: str, client_secret: str) -> Application | None:
        del self
        calls.append((client_id, client_secret))
        return verdicts[len(calls) - 1]

    monkeypatch.setattr(AppStore, "authenticate_client", spy)
    form = {"grant_type": "client_credentials"}
    refused = await http.post("/oauth/token", data=form, auth=(created.app.id, created.client_secret))
    accepted = await http.post("/oauth/token", data=form, auth=(created.app.id, "any-secret-at-all"))
    assert calls == [(created.app.id, created.client_secret), (created.app.id, "any-secret-at-all")]
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    assert accepted.status_code == 200


async def test_management_routes_answer_with_and_without_the_trailing_slash(
    in_process: tuple[httpx.AsyncClient, CreatedApp],
) -> None:
    """Both spellings of the management path are served (the SDK uses the slash), neither redirects."""
    http, created = in_process
    for path in ("/v2.0/management/connections/", "/v2.0/management/connections"):
        response = await http.get(path, auth=("default", created.management_token))
        assert (response.status_code, response.json()) == (200, {"connections": [], "paging": {"cursor": None}})
