"""Who is signed in to the dashboard: the dependencies every page uses (signing in and out: login.py).

A page's handler takes `Signed` (any signed-in session) or `AppScoped` (the session's app, which must be the app
id in the URL: any other id answers 404, so a session cannot even learn which apps exist). An unauthenticated
page request is redirected to the sign-in page; a form that changes state must carry the session's CSRF token.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData

from schemas.application import Application
from services.errors import NotFoundError
from services.http.context import HttpContext, get_context
from services.http.dashboard.session import COOKIE, SessionSecret, csrf_token, verify_session


class LoginRequiredError(Exception):
    """No valid session: answered with a redirect to the sign-in page."""


class DashboardNotFoundError(Exception):
    """Not this session's to see (or not there at all): answered 404 with the dashboard's page."""


class CsrfRefusedError(Exception):
    """A state-changing form without this session's CSRF token: answered 403, nothing changed."""


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A page request of a valid session: the context, the session's app and its CSRF token."""

    context: HttpContext
    app: Application
    csrf: str


def session_secret(request: Request) -> SessionSecret:
    secret: SessionSecret = request.app.state.dashboard_secret
    return secret


async def signed_in(request: Request, context: Annotated[HttpContext, Depends(get_context)]) -> SignedIn:
    secret = await session_secret(request).get()
    session = verify_session(secret, request.cookies.get(COOKIE), time.time())
    if session is None:
        raise LoginRequiredError
    try:
        app = await context.apps.get(session.app_id)
    except NotFoundError:  # the app was deleted since sign-in
        raise LoginRequiredError from None
    return SignedIn(context, app, csrf_token(secret, session))


Signed = Annotated[SignedIn, Depends(signed_in)]


async def app_scoped(app_id: str, signed: Signed) -> SignedIn:
    """The session, when the URL's app is the session's own; 404 for any other."""
    if app_id != signed.app.id:
        raise DashboardNotFoundError
    return signed


AppScoped = Annotated[SignedIn, Depends(app_scoped)]


async def checked_form(request: Request, signed: Signed) -> FormData:
    """The posted form, once its `csrf` field is this session's token."""
    form = await request.form()
    presented = form.get("csrf")
    if not isinstance(presented, str) or not hmac.compare_digest(presented, signed.csrf):
        raise CsrfRefusedError
    return form


CheckedForm = Annotated[FormData, Depends(checked_form)]
