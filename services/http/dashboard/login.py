"""Signing in to the dashboard with the app's management token, and signing out.

The token is checked against the registry (AppStore.app_of_management_token) and never stored: the cookie holds a
signed session naming the app (session.py). Sign-in attempts are rate limited per IP like Connect's logins.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from services.http.context import HttpContext, get_context
from services.http.dashboard.auth import CheckedForm, Signed, session_secret
from services.http.dashboard.layout import BASE, app_base, bare_page, see
from services.http.dashboard.session import COOKIE, COOKIE_PATH, sign_session

router = APIRouter()
LOGIN_ENDPOINT = "dashboard-login"
MAX_TOKEN_LENGTH = 200
REFUSED = "That is not the management token of any application: use the one printed by fleetgate apps create."


@router.get("")
async def home(signed: Signed) -> Response:
    """The signed-in app's Vehicle Access page (without a session: the sign-in page, as for every page)."""
    return see(f"{app_base(signed.app.id)}/access")


@router.get("/login")
async def login_page(request: Request) -> Response:
    return _login(request)


@router.post("/login")
async def login(request: Request, context: Annotated[HttpContext, Depends(get_context)]) -> Response:
    form = await request.form()
    token = form.get("token")
    token = token.strip() if isinstance(token, str) else ""
    ip = request.client.host if request.client else "unknown"
    verdict = await context.login_limiter.hit(LOGIN_ENDPOINT, "dashboard", ip)
    if not verdict.allowed:
        wait = f"Too many sign-in attempts. Try again in {verdict.retry_after_s} seconds."
        return _login(request, error=wait, status_code=429)
    app = await context.apps.app_of_management_token(token) if 0 < len(token) <= MAX_TOKEN_LENGTH else None
    if app is None:
        return _login(request, error=REFUSED, status_code=401)
    secret = await session_secret(request).get()
    ttl = context.settings.dashboard_session_ttl_s
    response = see(f"{app_base(app.id)}/access")
    response.set_cookie(
        COOKIE,
        sign_session(secret, app.id, int(time.time()) + ttl),
        max_age=ttl,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout(signed: Signed, form: CheckedForm) -> Response:
    del signed, form  # only a signed-in session's own form may sign it out
    response = see(f"{BASE}/login")
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax")
    return response


def _login(request: Request, *, error: str | None = None, status_code: int = 200) -> Response:
    return bare_page(request, "login.html", {"title": "Sign in", "error": error}, status_code=status_code)
