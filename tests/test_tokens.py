"""OAuth codes and tokens on a real redis-server: single use, binding to app and redirect URI, rotation with a
grace period, expiry, revocation, and nothing stored in clear."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from services.keyspace import Keys
from services.registry import TokenLifetimes, TokenStore
from tests.redis_dump import stored_text

REDIRECT = "https://app.example/callback"


@pytest.fixture
def tokens(redis: Redis, keys: Keys) -> TokenStore:
    return TokenStore(redis, keys, TokenLifetimes(refresh_grace_s=1, access_token_ttl_s=1))


async def test_a_code_gives_tokens_once(tokens: TokenStore) -> None:
    """The code is exchanged for a pair the first time and refused the second."""
    code = await tokens.issue_code("app", "user", REDIRECT)
    pair = await tokens.redeem_code(code, "app", REDIRECT)
    assert pair is not None
    assert pair.expires_in == 1
    assert await tokens.redeem_code(code, "app", REDIRECT) is None
    grant = await tokens.access(pair.access_token)
    assert grant is not None
    assert (grant.app_id, grant.user_id) == ("app", "user")


@pytest.mark.parametrize(("app_id", "redirect_uri"), [("other", REDIRECT), ("app", "https://app.example/other")])
async def test_a_code_is_bound_to_its_app_and_redirect_uri(tokens: TokenStore, app_id: str, redirect_uri: str) -> None:
    """Another client, or another redirect URI, gets nothing for the code; and the code is spent by the attempt."""
    code = await tokens.issue_code("app", "user", REDIRECT)
    assert await tokens.redeem_code(code, app_id, redirect_uri) is None
    assert await tokens.redeem_code(code, "app", REDIRECT) is None


async def test_refresh_rotates_and_the_used_token_dies_after_the_grace(tokens: TokenStore) -> None:
    """A refresh gives a new pair; the used refresh token works within the grace and not after it."""
    pair = await tokens.issue_pair("app", "user")
    refreshed = await tokens.refresh(pair.refresh_token, "app")
    assert refreshed is not None
    assert refreshed.refresh_token != pair.refresh_token
    assert await tokens.refresh(pair.refresh_token, "other") is None
    assert await tokens.refresh(pair.refresh_token, "app") is not None  # a lost reply may be retried
    await asyncio.sleep(1.2)
    assert await tokens.refresh(pair.refresh_token, "app") is None
    assert await tokens.refresh(refreshed.refresh_token, "app") is not None


async def test_access_tokens_expire(tokens: TokenStore) -> None:
    """An access token is refused once its lifetime is over."""
    pair = await tokens.issue_pair("app", "user")
    assert await tokens.access(pair.access_token) is not None
    await asyncio.sleep(1.2)
    assert await tokens.access(pair.access_token) is None


async def test_revoking_a_user_kills_their_tokens_only(tokens: TokenStore) -> None:
    """Every token of the user with the app stops working; another user's and another app's do not."""
    mine = [await tokens.issue_pair("app", "user") for _ in range(2)]
    theirs = await tokens.issue_pair("app", "someone")
    other_app = await tokens.issue_pair("other", "user")
    assert await tokens.revoke_user("app", "user") == 4
    for pair in mine:
        assert await tokens.access(pair.access_token) is None
        assert await tokens.refresh(pair.refresh_token, "app") is None
    assert await tokens.access(theirs.access_token) is not None
    assert await tokens.access(other_app.access_token) is not None


async def test_no_token_is_stored_in_clear(tokens: TokenStore, redis: Redis, keys: Keys) -> None:
    """Keys and values hold hashes and grants, never a code or token itself."""
    code = await tokens.issue_code("app", "user", REDIRECT)
    pair = await tokens.issue_pair("app", "user")
    app_token, _ = await tokens.issue_app_token("app")
    dump = await stored_text(redis, keys.prefix)
    assert '"user_id":"user"' in dump
    for secret in (code, pair.access_token, pair.refresh_token, app_token):
        assert secret not in dump
