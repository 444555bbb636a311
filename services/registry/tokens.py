"""OAuth codes and tokens: issued, redeemed, refreshed and looked up, stored only as hashes, each expiring by TTL.

- An authorization code is single-use (redeemed with GETDEL), bound to its app and redirect URI, valid
  `code_ttl_s` (10 min).
- Access tokens are opaque, valid `access_token_ttl_s` (7200 s); refresh tokens `refresh_token_ttl_s` (60 days).
  Refreshing rotates the pair; the refresh token used stays valid `refresh_grace_s` (60 s) more, so a client that
  lost the reply can retry, and is then gone.
- Application tokens (client credentials, v3) are valid `app_token_ttl_s` (3600 s) and name no user.
- Every token of a user with an app can be revoked at once (`P:app:{app}:user:{user}:tokens` lists their hashes).

A token's record is the JSON of its `TokenGrant`; the store never keeps or logs a token itself.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from services.keyspace import Keys
from services.redis_client import Client
from services.registry.apps import new_secret, token_hash

CODE = "code"
ACCESS = "access"
REFRESH = "refresh"
APPLICATION = "app"


@dataclass(frozen=True, slots=True)
class TokenLifetimes:
    """How long each kind lives, in seconds: settings, so tests can expire them."""

    code_ttl_s: int = 600
    access_token_ttl_s: int = 7200
    refresh_token_ttl_s: int = 60 * 86_400
    refresh_grace_s: int = 60
    app_token_ttl_s: int = 3600


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What a code or token stands for: an app, and the user who went through Connect (None for an app token)."""

    app_id: str
    user_id: str | None
    redirect_uri: str | None = None
    """For a code: the redirect URI it was issued to (the exchange must name the same)."""


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


class TokenStore:
    def __init__(self, redis: Client, keys: Keys, lifetimes: TokenLifetimes) -> None:
        self.redis = redis
        self.keys = keys
        self.lifetimes = lifetimes

    async def issue_code(self, app_id: str, user_id: str, redirect_uri: str) -> str:
        """An authorization code for a user who granted the app access in Connect."""
        code = new_secret()
        await self._store(CODE, code, TokenGrant(app_id, user_id, redirect_uri), self.lifetimes.code_ttl_s)
        return code

    async def redeem_code(self, code: str, app_id: str, redirect_uri: str | None) -> TokenPair | None:
        """Tokens for a valid code of this app, once; None for an unknown, expired, used or foreign code, or one
        issued to another redirect URI (when the exchange names one)."""
        record = await self.redis.getdel(self.keys.token(CODE, token_hash(code)))
        if record is None:
            return None
        grant = _grant(record)
        if grant.app_id != app_id or grant.user_id is None:
            return None
        if redirect_uri is not None and redirect_uri != grant.redirect_uri:
            return None
        return await self.issue_pair(app_id, grant.user_id)

    async def issue_pair(self, app_id: str, user_id: str) -> TokenPair:
        access, refresh = new_secret(), new_secret()
        grant = TokenGrant(app_id, user_id)
        await self._store(ACCESS, access, grant, self.lifetimes.access_token_ttl_s)
        await self._store(REFRESH, refresh, grant, self.lifetimes.refresh_token_ttl_s)
        return TokenPair(access, refresh, self.lifetimes.access_token_ttl_s)

    async def refresh(self, refresh_token: str, app_id: str) -> TokenPair | None:
        """A new pair for a valid refresh token of this app; the one used expires `refresh_grace_s` later."""
        key = self.keys.token(REFRESH, token_hash(refresh_token))
        record = await self.redis.get(key)
        if record is None:
            return None
        grant = _grant(record)
        if grant.app_id != app_id or grant.user_id is None:
            return None
        ttl = int(await self.redis.ttl(key))
        if ttl < 0 or ttl > self.lifetimes.refresh_grace_s:
            await self.redis.expire(key, self.lifetimes.refresh_grace_s)
        return await self.issue_pair(app_id, grant.user_id)

    async def issue_app_token(self, app_id: str) -> tuple[str, int]:
        """An application token (client credentials) and its lifetime."""
        token = new_secret()
        await self._store(APPLICATION, token, TokenGrant(app_id, None), self.lifetimes.app_token_ttl_s)
        return token, self.lifetimes.app_token_ttl_s

    async def access(self, access_token: str) -> TokenGrant | None:
        """What a bearer access token grants; None when it is unknown, expired or revoked."""
        record = await self.redis.get(self.keys.token(ACCESS, token_hash(access_token)))
        return None if record is None else _grant(record)

    async def app_token(self, token: str) -> TokenGrant | None:
        record = await self.redis.get(self.keys.token(APPLICATION, token_hash(token)))
        return None if record is None else _grant(record)

    async def revoke_user(self, app_id: str, user_id: str) -> int:
        """Revoke every access and refresh token the user holds for the app; how many were still valid."""
        index = self.keys.user_tokens(app_id, user_id)
        members = await self.redis.smembers(index)
        keys = [m.decode() if isinstance(m, bytes) else m for m in members]
        if not keys:
            return 0
        deleted = int(await self.redis.delete(*keys)) if not self.keys.sharded else await self._delete_each(keys)
        await self.redis.delete(index)
        return deleted

    async def _delete_each(self, keys: list[str]) -> int:
        return sum([int(await self.redis.delete(k)) for k in keys])

    async def _store(self, kind: str, token: str, grant: TokenGrant, ttl_s: int) -> None:
        key = self.keys.token(kind, token_hash(token))
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(key, json.dumps(asdict(grant), separators=(",", ":")), ex=ttl_s)
            if kind in (ACCESS, REFRESH) and grant.user_id is not None:
                index = self.keys.user_tokens(grant.app_id, grant.user_id)
                pipe.sadd(index, key)
                # The index outlives the tokens it lists by at most a refresh token's life.
                pipe.expire(index, self.lifetimes.refresh_token_ttl_s)
            await pipe.execute()


def _grant(record: bytes | str) -> TokenGrant:
    fields = json.loads(record)
    return TokenGrant(fields["app_id"], fields["user_id"], fields.get("redirect_uri"))
