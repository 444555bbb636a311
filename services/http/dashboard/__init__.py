"""The dashboard of `fleetgate serve` (`/dashboard`): an app's developers sign in with its management token and
edit its Vehicle Access, browse and diff its versions, preview its Connect grant screen and URL, set its
Connection Filters, search and revoke its connections, manage its webhooks, watch its decisions live, read
least-privilege advice from its decisions and see what publishing a config would mean. Server-rendered pages
(templates/dashboard/), small scripts (static/dashboard/), none of it in the OpenAPI document.

`install(app)` adds the pages and the answers of a missing session (a redirect to sign-in), of another app's URL
(404) and of a form without its CSRF token (403). A new page is a module with its own router, included here, and
an entry in `layout.NAV`.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from services.http.context import HttpContext
from services.http.dashboard import (
    access,
    advice,
    connections,
    filters,
    live,
    login,
    preview,
    versions,
    webhooks,
    whatif,
)
from services.http.dashboard.auth import CsrfRefusedError, DashboardNotFoundError, LoginRequiredError
from services.http.dashboard.layout import BASE, bare_page, see
from services.http.dashboard.session import SessionSecret

PAGES: list[APIRouter] = [
    login.router,
    access.router,
    versions.router,
    preview.router,
    filters.router,
    advice.router,
    whatif.router,
    connections.router,
    webhooks.router,
    live.router,
]
"""Each page module's router (paths under `/dashboard`); a new page adds its own."""

NOT_FOUND = "There is no such page for the application you are signed in as."
CSRF_REFUSED = "This form is out of date (or came from elsewhere): nothing was changed. Reload the page and try again."


def install(app: FastAPI, context: HttpContext) -> None:
    secret = context.settings.dashboard_secret
    app.state.dashboard_secret = SessionSecret(
        context.redis, context.registry.keys, None if secret is None else secret.get_secret_value()
    )
    for router in PAGES:
        app.include_router(router, prefix=BASE, include_in_schema=False)
    # After every page: any other dashboard path is the dashboard's 404 page, not the API's JSON one.
    app.add_api_route(f"{BASE}/{{rest:path}}", _unknown_page, methods=["GET"], include_in_schema=False)
    app.add_exception_handler(LoginRequiredError, _to_login)
    app.add_exception_handler(DashboardNotFoundError, _not_found)
    app.add_exception_handler(CsrfRefusedError, _csrf_refused)


async def _to_login(request: Request, exc: Exception) -> Response:
    del request, exc
    return see(f"{BASE}/login")


async def _not_found(request: Request, exc: Exception) -> Response:
    del exc
    return bare_page(request, "not_found.html", {"title": "Not found", "message": NOT_FOUND}, status_code=404)


async def _unknown_page(request: Request, rest: str) -> Response:
    del rest
    return await _not_found(request, DashboardNotFoundError())


async def _csrf_refused(request: Request, exc: Exception) -> Response:
    del exc
    context = {"title": "Form expired", "message": CSRF_REFUSED}
    return bare_page(request, "not_found.html", context, status_code=403)
