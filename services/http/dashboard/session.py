"""Dashboard sessions: a signed, expiring cookie naming the signed-in app, and the CSRF token bound to it.

The cookie holds `{app_id}.{expiry epoch s}.{random id}` and an HMAC-SHA256 of that under the server secret; never
the management token. Verification is pure (the secret and the clock are arguments), so it is tested without a
server. The secret is the setting FLEETGATE_DASHBOARD_SECRET, else a random one made once in Redis (SET NX), so
that every `fleetgate serve` of a stack, and its restarts, accept each other's sessions.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from schemas.application import APP_ID_PATTERN
from services.keyspace import Keys
from services.redis_client import Client

COOKIE = "fleetgate_dashboard"
COOKIE_PATH = "/dashboard"
SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class Session:
    """A verified sign-in: which app, until when, and the cookie value it came from (the CSRF token's basis)."""

    app_id: str
    expires_at: int
    value: str

    def __repr__(self) -> str:  # the cookie is a bearer credential: never printed whole
        return f"Session(app_id={self.app_id!r}, expires_at={self.expires_at})"


def sign_session(secret: bytes, app_id: str, expires_at: int) -> str:
    """A new session cookie value for `app_id`, valid until `expires_at` (epoch seconds)."""
    body = f"{app_id}.{expires_at}.{secrets.token_urlsafe(12)}"
    return f"{body}.{_mac(secret, 'session', body)}"


def verify_session(secret: bytes, value: str | None, now: float) -> Session | None:
    """The session a cookie value carries; None when absent, malformed, forged or expired."""
    if not value or len(value) > 512:
        return None
    body, _, mac = value.rpartition(".")
    head, _, nonce = body.rpartition(".")  # the random part has no dot (URL-safe base64); an app id may
    app_id, _, expiry = head.rpartition(".")
    if not re.match(APP_ID_PATTERN, app_id) or not expiry.isdigit() or not nonce:
        return None
    if not hmac.compare_digest(mac, _mac(secret, "session", body)):
        return None
    if int(expiry) <= now:
        return None
    return Session(app_id, int(expiry), value)


def csrf_token(secret: bytes, session: Session) -> str:
    """The token every state-changing form of this session carries (another session's token does not pass)."""
    return _mac(secret, "csrf", session.value)


def _mac(secret: bytes, purpose: str, text: str) -> str:
    digest = hmac.new(secret, f"{purpose}:{text}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class SessionSecret:
    """The signing secret of this process: the setting's, or the stack's one in Redis, read once and kept."""

    def __init__(self, redis: Client, keys: Keys, configured: str | None) -> None:
        self.redis = redis
        self.keys = keys
        self._secret = configured.encode() if configured else None
        self._lock = asyncio.Lock()

    async def get(self) -> bytes:
        if self._secret is not None:
            return self._secret
        async with self._lock:
            if self._secret is None:
                fresh = secrets.token_urlsafe(SECRET_BYTES)
                await self.redis.set(self.keys.dashboard_secret, fresh, nx=True)  # the first process's wins
                stored = await self.redis.get(self.keys.dashboard_secret)
                self._secret = stored if isinstance(stored, bytes) else str(stored).encode()
        return self._secret
