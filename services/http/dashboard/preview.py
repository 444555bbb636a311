"""The Connect preview: `/dashboard/apps/{app_id}/access/preview`.

For the selection being edited (query fields as the editor's, see selection.py), a published `version`, or by
default the current one, it shows the grant screen an owner would see, rendered by Connect's own template with
Connect's own context (pages.grant_context) in a sandboxed frame whose form cannot submit, on example vehicles
greyed as the app's Connection Filters grey them; and the Connect URL an app sends, without `scope` (Connect asks
for the published version) and with a `scope` override, validated as Connect validates it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from schemas.access import derive
from schemas.errors import FleetgateError
from schemas.permissions import PermissionSet
from schemas.powertrain import Powertrain
from schemas.scope import parse_scope, render_scope
from services.http.connect.flow import Flow, FlowKind, FlowVehicle
from services.http.connect.pages import error_page, grant_context
from services.http.dashboard.access import published
from services.http.dashboard.auth import AppScoped, SignedIn
from services.http.dashboard.connect_url import connect_url
from services.http.dashboard.layout import HEADERS, page
from services.http.dashboard.selection import Selection
from services.http.templating import render

router = APIRouter()
MAX_SCOPE_LENGTH = 2000
EXAMPLE_VEHICLES = (
    (Powertrain.BEV, FlowVehicle(id="example-bev", make="CHEVROLET", model="Bolt EV", year=2022,
                                 vin="1G1FZ6S00N4100001", admitted=True)),
    (Powertrain.ICE, FlowVehicle(id="example-ice", make="FORD", model="F-150", year=2021,
                                 vin="1FTEW1EP0MFA00002", admitted=True)),
    (Powertrain.PHEV, FlowVehicle(id="example-phev", make="TOYOTA", model="RAV4 Prime", year=2023,
                                  vin="JTMFB3FV0PD000003", admitted=True)),
)  # fmt: skip
"""The preview's owner has one vehicle of each powertrain choice, so the Connection Filters show in it."""


async def _requested(request: Request, signed: SignedIn) -> dict[str, Any]:
    """What the preview shows: the selection (or a published version), its permissions, the override's."""
    query = request.query_params
    selection = Selection.from_fields(query.multi_items())
    source = "the selection being edited"
    if selection.empty:
        version = query.get("version", "")
        config = await published(signed, int(version) if version.isdigit() and int(version) > 0 else None)
        selection = Selection.of_config(config)
        source = "no published version" if config is None else f"version {config.version}"
    permissions, error = PermissionSet(), None
    if not selection.empty:
        try:
            permissions = derive(selection.config())
        except FleetgateError as exc:
            error = str(exc)
    override = query.get("scope", "").strip()[:MAX_SCOPE_LENGTH]
    override_permissions, scope_error = None, None
    if override:
        try:
            override_permissions = parse_scope(override)
        except FleetgateError as exc:
            scope_error = str(exc)
        else:
            refused = signed.app.not_allowed(override_permissions)
            if refused:
                scope_error = f"This application is not enabled for {', '.join(refused)}: Connect refuses the URL."
                override_permissions = None
    return {
        "selection": selection,
        "source": source,
        "permissions": permissions,
        "error": error,
        "override": override,
        "override_permissions": override_permissions,
        "scope_error": scope_error,
    }


@router.get("/apps/{app_id}/access/preview")
async def preview(request: Request, signed: AppScoped) -> Response:
    found = await _requested(request, signed)
    origin = str(request.base_url)
    shown = found["override_permissions"] or found["permissions"]
    current = await published(signed)
    context = {
        **found,
        "scope_string": render_scope(found["permissions"]),
        "current_version": None if current is None else current.version,
        "url_without_scope": connect_url(origin, signed.app),
        "url_with_scope": None
        if found["override_permissions"] is None
        else connect_url(origin, signed.app, render_scope(found["override_permissions"])),
        "frame_query": request.url.query,
        "shows_override": found["override_permissions"] is not None,
        "nothing": not shown,
    }
    return page(request, signed, "preview.html", context, active="preview", title="Connect preview")


@router.get("/apps/{app_id}/access/preview/grant")
async def preview_grant(request: Request, signed: AppScoped) -> HTMLResponse:
    """The grant screen itself, as Connect renders it, for the preview's frame (no flow: its form goes nowhere)."""
    found = await _requested(request, signed)
    permissions = found["override_permissions"] or found["permissions"]
    if not permissions:
        message = "Nothing to preview: select at least one signal or command, or publish a version."
        response = error_page(request, message, status_code=200, app_name=signed.app.name, title="Nothing to preview")
        response.headers.update(HEADERS)
        return response
    filters = await signed.context.registry.filters(signed.app.id)
    vehicles = [v.model_copy(update={"admitted": filters.admits(p)}) for p, v in EXAMPLE_VEHICLES]
    flow = Flow(
        id="preview",
        kind=FlowKind.AUTHORIZE,
        app_id=signed.app.id,
        app_name=signed.app.name,
        redirect_uri="",
        requested=render_scope(permissions),
        mode=signed.app.mode,
        vehicles=vehicles,
    )
    context = grant_context(flow, nonce="") | {"action": ""}
    response = render(request, "grant.html", context)
    response.headers.update(HEADERS)
    return response
