"""Credentials in the Authorization header: Basic (clients, management tokens) and Bearer (access tokens).

The parsers are pure and never raise: a missing or malformed header is None, and the endpoint answers in its own
error shape (OAuth's `invalid_client` at the token endpoint, Smartcar's AUTHENTICATION elsewhere). The two
`fastapi.security` subclasses only declare the schemes in the OpenAPI document and read the header with these
parsers (FastAPI's own HTTPBasic raises its own 401 on a malformed header, whatever `auto_error` says).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from fastapi.security import HTTPBasic, HTTPBearer
from starlette.requests import HTTPConnection


@dataclass(frozen=True, slots=True)
class BasicCredentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never the password, whatever prints this
        return f"BasicCredentials(username={self.username!r}, password=<hidden>)"


def parse_basic(header: str | None) -> BasicCredentials | None:
    """`Basic b64(user:password)` (RFC 7617, UTF-8); None when absent, another scheme or malformed."""
    scheme, _, param = (header or "").strip().partition(" ")
    if scheme.lower() != "basic" or not param.strip():
        return None
    try:
        decoded = base64.b64decode(param.strip(), validate=True).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return BasicCredentials(username, password) if sep else None


def parse_bearer(header: str | None) -> str | None:
    """The token of `Bearer <token>` (scheme case-insensitive); None when absent, another scheme or empty."""
    scheme, _, token = (header or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


class BasicAuth(HTTPBasic):
    """HTTP Basic in OpenAPI; the credentials, or None (never an exception)."""

    async def __call__(self, request: HTTPConnection) -> BasicCredentials | None:  # type: ignore[override]
        return parse_basic(request.headers.get("authorization"))


class BearerAuth(HTTPBearer):
    """HTTP Bearer in OpenAPI; the token, or None (never an exception)."""

    async def __call__(self, request: HTTPConnection) -> str | None:  # type: ignore[override]
        return parse_bearer(request.headers.get("authorization"))


client_basic = BasicAuth(scheme_name="clientBasic", description="client_id:client_secret", auto_error=False)
management_basic = BasicAuth(
    scheme_name="managementBasic", description="default:<application management token>", auto_error=False
)
access_bearer = BearerAuth(scheme_name="accessToken", description="a user's access token", auto_error=False)
management_bearer = BearerAuth(
    scheme_name="managementBearer", description="the application's management token", auto_error=False
)
