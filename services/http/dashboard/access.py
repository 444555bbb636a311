"""The Vehicle Access editor: `/dashboard/apps/{app_id}/access`.

GET shows the catalog with the published config preselected. The page's script posts the selection to
`.../access/derive` on every change and swaps in the permissions panel it answers (rendered from `derive()`);
without JavaScript the form's Recompute button re-renders the whole page. Save publishes a new version through
the registry (as `fleetgate access publish` does) and comes back to the page saying which version it made and how
many active connections would need a re-authentication to get it. Preview and What-if take the selection being
edited to their pages (preview.py, whatif.py) without saving it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from schemas.access import VehicleAccessConfig, derive
from schemas.errors import FleetgateError
from services.errors import NotFoundError
from services.http.dashboard.auth import AppScoped, CheckedForm, SignedIn
from services.http.dashboard.impact import impact
from services.http.dashboard.layout import HEADERS, app_base, page, see
from services.http.dashboard.selection import Selection, catalog_rows, permissions_panel
from services.http.templating import render

router = APIRouter()


async def published(signed: SignedIn, version: int | None = None) -> VehicleAccessConfig | None:
    """The app's current (or given) published config; None when there is none."""
    try:
        return await signed.context.registry.config(version, signed.app.id)
    except NotFoundError:
        return None


@router.get("/apps/{app_id}")
async def app_home(signed: AppScoped) -> Response:
    return see(f"{app_base(signed.app.id)}/access")


@router.get("/apps/{app_id}/access")
async def editor(request: Request, signed: AppScoped, saved: str = "", q: str = "") -> Response:
    current = await published(signed)
    saved_note = None
    if saved.isdigit() and (config := await published(signed, int(saved))) is not None:
        saved_note = {"version": config.version, "impact": await impact(signed.context, signed.app.id, derive(config))}
    return _editor(request, signed, Selection.of_config(current), current, saved=saved_note, q=q)


@router.post("/apps/{app_id}/access/derive")
async def derive_panel(request: Request, signed: AppScoped) -> HTMLResponse:
    """The permissions panel for the posted selection (a fragment: the editor's script swaps it in)."""
    selection = Selection.from_fields((await request.form()).multi_items())
    response = render(request, "dashboard/_permissions.html", {"panel": permissions_panel(selection, signed.app)})
    response.headers.update(HEADERS)
    return response


@router.post("/apps/{app_id}/access")
async def submit(request: Request, signed: AppScoped, form: CheckedForm) -> Response:
    """Recompute (the page without JavaScript), Preview (the Connect preview of this selection), What-if (its
    what-if against the fleet and the connections) or Save."""
    selection = Selection.from_fields(form.multi_items())
    action = form.get("action")
    base = app_base(signed.app.id)
    if action in ("preview", "whatif"):
        return see(f"{base}/access/{action}?{selection.query()}")
    current = await published(signed)
    if action != "save":
        return _editor(request, signed, selection, current)
    try:
        config = selection.config()
    except FleetgateError as exc:
        return _editor(request, signed, selection, current, error=f"Nothing was saved: {exc}", status_code=400)
    version = await signed.context.registry.publish_config(config, signed.app.id)
    return see(f"{base}/access?saved={version.version}")


def _editor(
    request: Request,
    signed: SignedIn,
    selection: Selection,
    current: VehicleAccessConfig | None,
    *,
    saved: dict[str, Any] | None = None,
    error: str | None = None,
    q: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    context = {
        "catalog": catalog_rows(),
        "chosen": {*selection.signals, *selection.commands},
        "required": selection.required,
        "panel": permissions_panel(selection, signed.app),
        "current_version": None if current is None else current.version,
        "q": q,
        "q_words": q.lower().split(),
        "saved": saved,
        "error": error,
    }
    title = "Vehicle Access"
    return page(request, signed, "access.html", context, active="access", title=title, status_code=status_code)
