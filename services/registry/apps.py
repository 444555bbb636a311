"""Applications in the registry: create, list, rotate client secrets, authenticate a client or a management token.

Client secrets and management tokens are 256-bit random strings, so one SHA-256 of each is stored (no salt or slow
hash is needed for secrets nobody chose; a leaked registry gives nothing to replay). Secrets are compared in
constant time. The default application (`DEFAULT_APP_ID`) exists implicitly: it owns what was written before
applications existed, and has no secret until one is rotated in.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from schemas.application import APP_ID_PATTERN, DEFAULT_APP_ID, MAX_CLIENT_SECRETS, Application, AppMode
from schemas.catalog import get_catalog
from services.errors import NotFoundError, ServiceError
from services.keyspace import Keys
from services.redis_client import Client

DEFAULT_APP_NAME = "Default app"


def token_hash(token: str) -> str:
    """How a secret or token is stored and looked up: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_secret() -> str:
    """A new client secret, management token or OAuth token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class CreatedApp:
    """An application just created, with the secrets shown this once (only their hashes are kept)."""

    app: Application
    client_secret: str = field(repr=False)  # a repr goes to logs and test failures: never the secrets
    management_token: str = field(repr=False)


class AppStore:
    """Applications as stored in Redis (`P:app:{id}`, `P:apps`, `P:amt:{hash}`)."""

    def __init__(self, redis: Client, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def create(
        self,
        name: str,
        redirect_uris: Sequence[str],
        mode: AppMode = AppMode.LIVE,
        *,
        app_id: str | None = None,
        permissions: Sequence[str] = (),
    ) -> CreatedApp:
        """Register an application with one client secret and a management token (shown once); `permissions`
        restricts what it may request in Connect (none: any)."""
        catalog = get_catalog()
        for permission in permissions:
            catalog.permission(permission)  # an unknown name is an error that names the close ones
        for uri in redirect_uris:
            _check_redirect_uri(uri)
        client_id = app_id or str(uuid.uuid4())
        if not re.match(APP_ID_PATTERN, client_id):
            raise ServiceError(
                f"client id {client_id!r}: use letters, digits, '.', '_' and '-' (at most 128, a letter or digit first)"
            )
        if client_id == DEFAULT_APP_ID:
            raise ServiceError(f"{DEFAULT_APP_ID!r} is the default application's id; choose another client id")
        secret, management_token = new_secret(), new_secret()
        app = Application(
            id=client_id,
            name=name,
            mode=mode,
            redirect_uris=tuple(redirect_uris),
            created_at=_now(),
            secrets=1,
            permissions=tuple(sorted(set(permissions))),
        )
        record = _record(app, [token_hash(secret)], token_hash(management_token))
        if not await self.redis.set(self.keys.app(client_id), record, nx=True):
            raise ServiceError(f"application {client_id!r} already exists")
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.keys.apps, {client_id: round(time.time() * 1000)})
            pipe.set(self.keys.management_token(token_hash(management_token)), client_id)
            await pipe.execute()
        return CreatedApp(app, secret, management_token)

    async def get(self, app_id: str) -> Application:
        """An application; the default one exists even when nothing was stored for it."""
        app, _ = await self._read(app_id)
        return app

    async def all(self) -> list[Application]:
        """Every application, oldest first, and the default one first of all."""
        ids = [_text(i) for i in await self.redis.zrange(self.keys.apps, 0, -1) if isinstance(i, bytes | str)]
        apps = [await self.get(DEFAULT_APP_ID)]
        apps += [await self.get(i) for i in ids if i != DEFAULT_APP_ID]
        return apps

    async def rotate_secret(self, app_id: str) -> str:
        """A new client secret (shown once); the newest three stay valid, an older one stops working."""
        app, fields = await self._read(app_id)
        secret = new_secret()
        hashes = [token_hash(secret), *fields.get("secret_hashes", [])][:MAX_CLIENT_SECRETS]
        updated = replace(app, secrets=len(hashes))
        await self.redis.set(self.keys.app(app_id), _record(updated, hashes, fields.get("management_token_hash")))
        if app_id == DEFAULT_APP_ID:
            await self.redis.zadd(self.keys.apps, {app_id: 0}, nx=True)
        return secret

    async def authenticate_client(self, client_id: str, client_secret: str) -> Application | None:
        """The application if `client_secret` is one of its valid secrets; None otherwise (unknown id included).
        Every stored hash is compared, in constant time, whether or not an earlier one matched."""
        try:
            app, fields = await self._read(client_id)
        except (NotFoundError, ValueError):
            return None
        offered = token_hash(client_secret)
        matched = False
        for stored in fields.get("secret_hashes", []):
            matched |= hmac.compare_digest(offered, stored)
        return app if matched else None

    async def app_of_management_token(self, token: str) -> Application | None:
        """The application a management token belongs to, None for any other string."""
        app_id = await self.redis.get(self.keys.management_token(token_hash(token)))
        if app_id is None:
            return None
        return await self.get(_text(app_id))

    async def delete(self, app_id: str) -> bool:
        """Forget an application: its record, its management token and its place in the list (its configs, filters
        and connections are the caller's to remove). False when it did not exist. The default app cannot go."""
        if app_id == DEFAULT_APP_ID:
            raise ServiceError("the default application cannot be deleted")
        record = await self.redis.get(self.keys.app(app_id))
        if record is None:
            return False
        token_hash = json.loads(record).get("management_token_hash")
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(self.keys.app(app_id))
            if token_hash:
                pipe.delete(self.keys.management_token(token_hash))
            pipe.zrem(self.keys.apps, app_id)
            await pipe.execute()
        return True

    async def _read(self, app_id: str) -> tuple[Application, dict[str, Any]]:
        record = await self.redis.get(self.keys.app(app_id))
        if record is None:
            if app_id == DEFAULT_APP_ID:
                return Application(id=DEFAULT_APP_ID, name=DEFAULT_APP_NAME, created_at=None), {}
            raise NotFoundError(f"unknown application {app_id!r} (fleetgate apps list)")
        fields = json.loads(record)
        app = Application(
            id=app_id,
            name=fields["name"],
            mode=AppMode(fields["mode"]),
            redirect_uris=tuple(fields["redirect_uris"]),
            created_at=None if fields["created_at"] is None else datetime.fromisoformat(fields["created_at"]),
            secrets=len(fields["secret_hashes"]),
            permissions=tuple(fields.get("permissions", ())),
        )
        return app, fields


def _record(app: Application, secret_hashes: list[str], management_token_hash: str | None) -> str:
    return json.dumps(
        {
            "name": app.name,
            "mode": app.mode.value,
            "redirect_uris": list(app.redirect_uris),
            "created_at": None if app.created_at is None else app.created_at.isoformat(),
            "secret_hashes": secret_hashes,
            "management_token_hash": management_token_hash,
            "permissions": list(app.permissions),
        },
        separators=(",", ":"),
    )


def _check_redirect_uri(uri: str) -> None:
    """An absolute http(s) URI without a fragment (RFC 6749 §3.1.2); anything else is refused at registration."""
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in ("http", "https") or not rest or "#" in uri or any(c.isspace() for c in uri):
        raise ServiceError(f"redirect URI {uri!r} must be an absolute http:// or https:// URI without a fragment")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
