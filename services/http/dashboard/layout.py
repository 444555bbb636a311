"""The dashboard's layout: its navigation and the helper every page renders through.

A page module adds its entry to `NAV` (label, id, path under `/dashboard/apps/{app_id}`) and renders with `page()`,
which fills in what the base template (templates/dashboard/base.html) expects: the app, the navigation with the
current entry marked, the CSRF token for the sign-out form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from services.http.dashboard.auth import SignedIn
from services.http.templating import render

BASE = "/dashboard"
HEADERS = {
    "cache-control": "no-store",
    "referrer-policy": "same-origin",
    "x-frame-options": "SAMEORIGIN",  # the preview frames its own grant screen; nobody else frames a page
    "x-content-type-options": "nosniff",
}


@dataclass(frozen=True, slots=True)
class NavItem:
    id: str
    """The entry's key: `active` names it, and its link's element id is `nav-{id}`."""
    label: str
    path: str
    """Under the app's base, e.g. `/access`."""


NAV: list[NavItem] = [
    NavItem("access", "Vehicle Access", "/access"),
    NavItem("versions", "Versions", "/access/versions"),
    NavItem("preview", "Connect preview", "/access/preview"),
    NavItem("filters", "Connection Filters", "/filters"),
    NavItem("advice", "Advice", "/advice"),
    NavItem("whatif", "What-if", "/access/whatif"),
    NavItem("connections", "Connections", "/connections"),
    NavItem("webhooks", "Webhooks", "/webhooks"),
    NavItem("live", "Live decisions", "/live"),
]
"""The navigation, in order; later pages (connections, live decisions) append theirs."""


def app_base(app_id: str) -> str:
    return f"{BASE}/apps/{app_id}"


def page(
    request: Request,
    signed: SignedIn,
    template: str,
    context: dict[str, Any],
    *,
    active: str,
    title: str,
    status_code: int = 200,
) -> HTMLResponse:
    """A dashboard page: `templates/dashboard/{template}` inside the layout, `active` the nav entry to mark."""
    base = app_base(signed.app.id)
    layout = {
        "title": title,
        "app": signed.app,
        "app_base": base,
        "nav": [{"id": n.id, "label": n.label, "url": base + n.path, "active": n.id == active} for n in NAV],
        "csrf": signed.csrf,
    }
    response = render(request, f"dashboard/{template}", layout | context, status_code=status_code)
    response.headers.update(HEADERS)
    return response


def see(url: str) -> RedirectResponse:
    """303 to `url`: after a form (post-redirect-get) and to the sign-in page."""
    return RedirectResponse(url, status_code=303, headers=HEADERS)


def bare_page(request: Request, template: str, context: dict[str, Any], *, status_code: int = 200) -> HTMLResponse:
    """A page outside a session (sign-in, not found): the layout without an app or navigation."""
    response = render(request, f"dashboard/{template}", context, status_code=status_code)
    response.headers.update(HEADERS)
    return response
