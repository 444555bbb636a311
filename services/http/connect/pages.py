"""The pages of the flow: each screen's template context, and the error page (never a redirect)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from schemas.catalog import get_catalog
from schemas.permissions import PermissionItem
from services.http.brands import brand, brands
from services.http.connect.flow import Flow
from services.http.templating import render

BASE = "/oauth/connect"
SCREENS = ("preamble", "brand", "login", "grant")
"""Smartcar's order of the screens; brand select is skipped with `make=`, `single_select_vin` or re-auth."""
NO_STORE = {"cache-control": "no-store", "referrer-policy": "no-referrer"}
"""On every page of the flow: nothing cached, and the flow id in a URL never sent on as a Referer."""
TEST_MODE_HINT = "Test mode: any email and password sign in (see Smartcar's test-mode accounts)."


def screen_url(screen: str, flow: Flow) -> str:
    return f"{BASE}/{screen}?flow={flow.id}"


def page(request: Request, name: str, context: dict[str, Any], *, status_code: int = 200) -> HTMLResponse:
    response = render(request, name, context, status_code=status_code)
    response.headers.update(NO_STORE)
    return response


def error_page(
    request: Request, message: str, *, status_code: int = 400, app_name: str | None = None, title: str | None = None
) -> HTMLResponse:
    """The error page: the request cannot be trusted enough to redirect anywhere."""
    context = {"title": title or "Something went wrong", "message": message, "app_name": app_name, "back_url": None}
    return page(request, "error.html", context, status_code=status_code)


def preamble(request: Request, flow: Flow) -> HTMLResponse:
    summary = [get_catalog().permission(p["name"]).description for p in _required_first(flow)]
    context = {
        "app_name": flow.app_name,
        "action": f"{BASE}/preamble",
        "hidden": {"flow": flow.id},
        "permissions_summary": summary,
        "step": None,
    }
    return page(request, "preamble.html", context)


def brand_select(request: Request, flow: Flow) -> HTMLResponse:
    context = {
        "app_name": flow.app_name,
        "action": f"{BASE}/brand",
        "hidden": {"flow": flow.id},
        "brands": list(brands()),
        "no_brand_url": screen_url("no-brand", flow),
    }
    return page(request, "brand_select.html", context)


def login(
    request: Request, flow: Flow, *, error: str | None = None, email: str | None = None, status_code: int = 200
) -> HTMLResponse:
    known = brand(flow.make) if flow.make else None
    context = {
        "app_name": flow.app_name,
        "brand_name": known.name if known else "your vehicle\u2019s brand",
        "action": f"{BASE}/login",
        "hidden": {"flow": flow.id},
        "error": error,
        "email": email,
        "hint": TEST_MODE_HINT if flow.mode == "test" else None,
        "back_url": screen_url("back", flow),
    }
    return page(request, "login.html", context, status_code=status_code)


def grant(
    request: Request, flow: Flow, nonce: str, *, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    return page(request, "grant.html", grant_context(flow, nonce, error=error), status_code=status_code)


def grant_context(flow: Flow, nonce: str, *, error: str | None = None) -> dict[str, Any]:
    """What grant.html shows for a flow: the live screen's, and the dashboard's preview of it (the same)."""
    catalog = get_catalog()
    return {
        "app_name": flow.app_name,
        "action": f"{BASE}/grant",
        "flow": flow.id,
        "nonce": nonce,
        "vehicles": flow.admitted,
        "incompatible": [v for v in flow.vehicles if not v.admitted],
        "single_select": flow.single_select,
        "permissions": [
            {"name": p["name"], "description": catalog.permission(p["name"]).description, "required": p["required"]}
            for p in _required_first(flow)
        ],
        "error": error,
    }


def _required_first(flow: Flow) -> list[PermissionItem]:
    """The requested permissions, the locked ones first, each group by name."""
    return sorted(flow.permissions.items(), key=lambda item: (not item["required"], item["name"]))
