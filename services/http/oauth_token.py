"""`POST /oauth/token`: the token endpoint (RFC 6749 §3.2) as Smartcar runs it, for the official SDKs.

- Client authentication: HTTP Basic `client_id:client_secret` (what the SDKs send), or `client_id` and
  `client_secret` in the form (RFC 6749 §2.3.1; Smartcar's v3 client-credentials request does this). Using both
  at once is `invalid_request` (RFC 6749 §2.3: one method per request). The secret is checked by
  `AppStore.authenticate_client` (constant time); nothing here compares secrets.
- Grants: `authorization_code` (`code`, and `redirect_uri`: when sent it must be the one the code was issued to;
  a code is single-use and lives 10 minutes), `refresh_token` (rotates the pair; the one used stays valid a minute)
  and `client_credentials` (an application token, no refresh token).
- Success: `{"access_token","token_type":"Bearer","expires_in","refresh_token"}` with `Cache-Control: no-store`.
- Errors: `{"error","error_description"}`, always with a description (without one the SDK raises a bare
  SDK_ERROR). An invalid code or refresh token is 400 `invalid_grant` in Smartcar's words, `Invalid code: X.` /
  `Invalid refresh_token: X.`: X is echoed back (cut at 128 characters) to the client that sent it, as Smartcar
  does; it is never logged. A bad client is 401 `invalid_client` with `WWW-Authenticate: Basic`.
- Rate limit: `FLEETGATE_TOKEN_RATE_LIMIT` calls a minute per client id and IP, counted before authentication
  (so it also bounds secret guessing); past it, Smartcar's RATE_LIMIT / SMARTCAR_API 429 with `retry-after`.
"""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from schemas.problems import HttpSmartcarError
from services.http.auth import BasicCredentials, client_basic
from services.http.context import HttpContext, get_context
from services.http.errors import rate_limit_error
from services.http.links import operation_ref
from services.registry.tokens import TokenPair

RATE_LIMIT_ENDPOINT = "token"
ECHO_MAX = 128
_CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

log = logging.getLogger(__name__)
router = APIRouter(tags=["oauth"])


class TokenRequest(BaseModel):
    """The form (`application/x-www-form-urlencoded`); which fields a grant needs is checked by the handler, so
    that a missing one is OAuth's `invalid_request`, not a validation error."""

    grant_type: str | None = None
    code: str | None = None
    redirect_uri: str | None = None
    refresh_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    scope: str | None = None
    """Accepted and ignored (client_credentials): an application token reaches what the app was granted."""


class UserTokens(BaseModel):
    """A user's token pair (grants authorization_code and refresh_token)."""

    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    refresh_token: str


class ApplicationToken(BaseModel):
    """An application token (grant client_credentials): no refresh token."""

    access_token: str
    token_type: str = "Bearer"
    expires_in: int


class OAuthError(BaseModel):
    """RFC 6749 §5.2 error; `error_description` always present."""

    error: str
    error_description: str


def oauth_error(error: str, description: str, status_code: int = 400) -> JSONResponse:
    headers = dict(NO_STORE)
    if error == "invalid_client":
        headers["WWW-Authenticate"] = 'Basic realm="fleetgate"'
    return JSONResponse({"error": error, "error_description": description}, status_code=status_code, headers=headers)


def _echo(value: str) -> str:
    return value[:ECHO_MAX]


def _tokens(pair: TokenPair) -> JSONResponse:
    body = UserTokens(access_token=pair.access_token, expires_in=pair.expires_in, refresh_token=pair.refresh_token)
    return JSONResponse(body.model_dump(), headers=NO_STORE)


REFRESH = {
    "operationRef": operation_ref("POST", "/oauth/token"),
    "requestBody": {"grant_type": "refresh_token", "refresh_token": "$response.body#/refresh_token"},
    "description": "Rotate a user's pair with its refresh token (the same client credentials)",
}
"""The only link a token answer has: its tokens are credentials, which an OpenAPI link cannot pass. (OpenAPI names
a whole body by one expression; one inside the body, as here, is how schemathesis and other tools read it.)"""


@router.post(
    "/oauth/token",
    summary="Exchange an authorization code or a refresh token for tokens; or get an application token",
    response_model=None,
    responses={
        200: {
            "model": UserTokens | ApplicationToken,
            "description": "Tokens (`Cache-Control: no-store`)",
            "links": {"refresh": REFRESH},
        },
        400: {"model": OAuthError, "description": "invalid_request, invalid_grant, unsupported_grant_type"},
        401: {"model": OAuthError, "description": "invalid_client (`WWW-Authenticate: Basic`)"},
        429: {"model": HttpSmartcarError, "description": "RATE_LIMIT / SMARTCAR_API, with `retry-after`"},
    },
)
async def token(
    request: Request,
    context: Annotated[HttpContext, Depends(get_context)],
    basic: Annotated[BasicCredentials | None, Depends(client_basic)],
    form: Annotated[TokenRequest, Form()],
) -> JSONResponse:
    client_id, client_secret = form.client_id, form.client_secret
    claimed = basic.username if basic is not None else client_id
    subject = claimed if claimed is not None and _CLIENT_ID.match(claimed) else "-"
    ip = request.client.host if request.client is not None else "-"
    verdict = await context.token_limiter.hit(RATE_LIMIT_ENDPOINT, subject, ip)
    if not verdict.allowed:
        log.warning("token endpoint rate limit reached for client %s from %s", subject, ip)
        response = rate_limit_error(request, verdict.retry_after_s)
        response.headers.update(NO_STORE)
        return response

    if basic is not None and (client_id is not None or client_secret is not None):
        return oauth_error("invalid_request", "Use one client authentication method: HTTP Basic or the form.")
    credentials = basic or (
        BasicCredentials(client_id, client_secret) if client_id is not None and client_secret is not None else None
    )
    if credentials is None:
        return oauth_error("invalid_client", "Invalid client credentials.", 401)
    app = await context.apps.authenticate_client(credentials.username, credentials.password)
    if app is None:
        log.info("token endpoint: client authentication failed for client %s", subject)
        return oauth_error("invalid_client", "Invalid client credentials.", 401)

    return await _grant(context, app.id, form)


async def _grant(context: HttpContext, app_id: str, form: TokenRequest) -> JSONResponse:
    grant_type, code, refresh_token = form.grant_type, form.code, form.refresh_token
    if not grant_type:
        return oauth_error("invalid_request", "Missing required parameter: grant_type.")
    if grant_type == "authorization_code":
        if not code:
            return oauth_error("invalid_request", "Missing required parameter: code.")
        pair = await context.tokens.redeem_code(code, app_id, form.redirect_uri or None)
        if pair is None:
            return oauth_error("invalid_grant", f"Invalid code: {_echo(code)}.")
        log.info("token endpoint: code exchanged for client %s", app_id)
        return _tokens(pair)
    if grant_type == "refresh_token":
        if not refresh_token:
            return oauth_error("invalid_request", "Missing required parameter: refresh_token.")
        pair = await context.tokens.refresh(refresh_token, app_id)
        if pair is None:
            return oauth_error("invalid_grant", f"Invalid refresh_token: {_echo(refresh_token)}.")
        log.info("token endpoint: tokens refreshed for client %s", app_id)
        return _tokens(pair)
    if grant_type == "client_credentials":
        access, expires_in = await context.tokens.issue_app_token(app_id)
        body: dict[str, Any] = ApplicationToken(access_token=access, expires_in=expires_in).model_dump()
        return JSONResponse(body, headers=NO_STORE)
    return oauth_error("unsupported_grant_type", f"Unsupported grant_type: {_echo(grant_type)}.")
