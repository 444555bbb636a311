"""The token endpoint with the official smartcar SDK (and httpx where the SDK has no call): codes, refresh
rotation with its grace, client authentication, OAuth error bodies."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import smartcar

from tests.http.oauth.conftest import REDIRECT_URI, OAuthWorld


async def test_auth_url_is_on_our_origin_with_authorize_params(world: OAuthWorld) -> None:
    """get_auth_url builds {our origin}/oauth/authorize with the client id, redirect URI, scope, mode and state."""
    url = world.auth_client().get_auth_url(["read_odometer", "read_vin"], {"state": "s1", "make_bypass": "TESLA"})
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == world.base_url
    assert parts.path == "/oauth/authorize"
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert params["response_type"] == "code"
    assert params["client_id"] == world.client_id
    assert params["redirect_uri"] == REDIRECT_URI
    assert params["scope"] == "read_odometer read_vin"
    assert (params["mode"], params["state"], params["make"]) == ("test", "s1", "TESLA")


async def test_exchange_code_gives_a_pair_that_works(world: OAuthWorld) -> None:
    """exchange_code returns Smartcar's Access (expires_in 7200, a refresh token); the access token works."""
    access = await world.user_access("user-1", "veh-a")
    assert access.token_type == "Bearer"
    assert access.expires_in == 7200
    assert access.refresh_token
    assert access.access_token != access.refresh_token
    assert smartcar.get_user(access.access_token).id == "user-1"


async def test_token_responses_are_not_cached(world: OAuthWorld) -> None:
    """Successes and errors of the token endpoint carry Cache-Control: no-store."""
    await world.connect_vehicle("user-1", "veh-a")
    form = {"grant_type": "authorization_code", "code": await world.code("user-1"), "redirect_uri": REDIRECT_URI}
    auth = (world.client_id, world.secret)
    async with httpx.AsyncClient(base_url=world.base_url) as http:
        ok = await http.post("/oauth/token", data=form, auth=auth)
        again = await http.post("/oauth/token", data=form, auth=auth)
    assert ok.status_code == 200
    assert set(ok.json()) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert again.status_code == 400
    for response in (ok, again):
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["sc-request-id"]


async def test_reused_code_is_smartcars_invalid_code(world: OAuthWorld) -> None:
    """A code works once: the second exchange is a SmartcarException 400 with Smartcar's `Invalid code: X.`."""
    await world.connect_vehicle("user-1", "veh-a")
    code = await world.code("user-1")
    world.auth_client().exchange_code(code)
    with pytest.raises(smartcar.SmartcarException) as caught:
        world.auth_client().exchange_code(code)
    assert caught.value.status_code == 400
    assert caught.value.type == "invalid_grant"
    assert caught.value.message == f"Invalid code: {code}."


async def test_code_is_bound_to_its_client_and_redirect_uri(world: OAuthWorld) -> None:
    """Another app's code, or a code exchanged with another redirect URI, is invalid_grant."""
    foreign = await world.code("user-1", app_id=world.other_app.app.id)
    with pytest.raises(smartcar.SmartcarException) as caught:
        world.auth_client().exchange_code(foreign)
    assert (caught.value.status_code, caught.value.type) == (400, "invalid_grant")
    elsewhere = smartcar.AuthClient(world.client_id, world.secret, "http://127.0.0.1:9/other", mode="test")
    with pytest.raises(smartcar.SmartcarException) as caught:
        elsewhere.exchange_code(await world.code("user-1"))
    assert (caught.value.status_code, caught.value.type) == (400, "invalid_grant")


async def test_wrong_secret_is_invalid_client_401(world: OAuthWorld) -> None:
    """A wrong client secret (or another app's) is a SmartcarException 401 invalid_client, the code untouched."""
    code = await world.code("user-1")
    for secret in ("not-the-secret", world.other_app.client_secret):
        with pytest.raises(smartcar.SmartcarException) as caught:
            world.auth_client(secret).exchange_code(code)
        assert (caught.value.status_code, caught.value.type) == (401, "invalid_client")
        assert caught.value.message == "Invalid client credentials."
    assert world.auth_client().exchange_code(code).access_token


async def test_invalid_client_asks_for_basic(world: OAuthWorld) -> None:
    """invalid_client carries WWW-Authenticate: Basic; no credentials at all is invalid_client too."""
    async with httpx.AsyncClient(base_url=world.base_url) as http:
        response = await http.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert response.json()["error"] == "invalid_client"


async def test_refresh_rotates_and_the_used_token_lasts_the_grace(world: OAuthWorld) -> None:
    """exchange_refresh_token gives a new pair; the used refresh token still works within the grace (1 s here) and
    is Smartcar's `Invalid refresh_token: X.` after it."""
    first = await world.user_access("user-1", "veh-a")
    second = world.auth_client().exchange_refresh_token(first.refresh_token)
    assert {second.access_token, second.refresh_token}.isdisjoint({first.access_token, first.refresh_token})
    assert second.expires_in == 7200
    assert smartcar.get_user(second.access_token).id == "user-1"
    retried = world.auth_client().exchange_refresh_token(first.refresh_token)  # a client that lost the reply
    assert retried.refresh_token != second.refresh_token
    time.sleep(1.3)
    with pytest.raises(smartcar.SmartcarException) as caught:
        world.auth_client().exchange_refresh_token(first.refresh_token)
    assert (caught.value.status_code, caught.value.type) == (400, "invalid_grant")
    assert caught.value.message == f"Invalid refresh_token: {first.refresh_token}."
    assert world.auth_client().exchange_refresh_token(second.refresh_token).access_token


async def test_refresh_token_of_another_app_is_refused(world: OAuthWorld) -> None:
    """A refresh token works only for the app it was issued to."""
    access = await world.user_access("user-1", "veh-a")
    other = smartcar.AuthClient(world.other_app.app.id, world.other_app.client_secret, REDIRECT_URI, mode="test")
    with pytest.raises(smartcar.SmartcarException) as caught:
        other.exchange_refresh_token(access.refresh_token)
    assert (caught.value.status_code, caught.value.type) == (400, "invalid_grant")


async def test_client_credentials_gives_an_application_token(world: OAuthWorld) -> None:
    """client_credentials with the client in the form (Smartcar v3's way): a 1-hour application token without a
    refresh token, which is no user's access token."""
    form = {"grant_type": "client_credentials", "client_id": world.client_id, "client_secret": world.secret}
    async with httpx.AsyncClient(base_url=world.base_url) as http:
        response = await http.post("/oauth/token", data=form)
        body = response.json()
        user = await http.get("/v2.0/user", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert response.status_code == 200
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3600)
    assert user.status_code == 401


@pytest.mark.parametrize(
    ("form", "error", "description"),
    [
        ({}, "invalid_request", "Missing required parameter: grant_type."),
        ({"grant_type": "authorization_code"}, "invalid_request", "Missing required parameter: code."),
        ({"grant_type": "refresh_token"}, "invalid_request", "Missing required parameter: refresh_token."),
        ({"grant_type": "password"}, "unsupported_grant_type", "Unsupported grant_type: password."),
    ],
)
async def test_request_errors_have_a_description(
    world: OAuthWorld, form: dict[str, str], error: str, description: str
) -> None:
    """A missing parameter is invalid_request and an unknown grant unsupported_grant_type, 400, each described."""
    async with httpx.AsyncClient(base_url=world.base_url) as http:
        response = await http.post("/oauth/token", data=form, auth=(world.client_id, world.secret))
    assert response.status_code == 400
    assert response.json() == {"error": error, "error_description": description}


async def test_two_client_authentication_methods_at_once_are_refused(world: OAuthWorld) -> None:
    """Basic and form credentials together are invalid_request (RFC 6749 §2.3)."""
    form = {"grant_type": "client_credentials", "client_id": world.client_id, "client_secret": world.secret}
    async with httpx.AsyncClient(base_url=world.base_url) as http:
        response = await http.post("/oauth/token", data=form, auth=(world.client_id, world.secret))
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
