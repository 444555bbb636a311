"""The authorize and re-authenticate requests, validated before any flow is stored.

Until the client and its redirect URI are known good, every refusal is an error page (never a redirect: no open
redirect). After that, a malformed parameter is a `configuration_error` redirect, except what Smartcar shows as a
page: a scope naming an unknown permission ("400: ...") and an unknown `make`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fastapi.responses import RedirectResponse

from schemas.access import derive
from schemas.application import Application, AppMode
from schemas.errors import ConnectError, ScopeError
from schemas.scope import parse_scope, render_scope
from schemas.vehicle import VIN_PATTERN
from services.errors import NotFoundError
from services.http.brands import brand
from services.http.connect.flow import Flow, FlowKind, new_flow_id
from services.http.connect.redirect import configuration_error, error_redirect
from services.http.context import HttpContext

log = logging.getLogger(__name__)
TEST_VIN_PREFIX = "0SC"
TEST_VIN_IN_LIVE = "You have entered a test mode VIN. Please enter a VIN that belongs to a real vehicle."
APPROVAL_PROMPTS = ("auto", "force")
_BOOLEANS = {"true": True, "false": False}
_SINGLE = (
    "response_type", "client_id", "redirect_uri", "scope", "state", "approval_prompt", "mode", "make",
    "single_select", "single_select_vin", "flags", "user", "vehicle_id",
)  # fmt: skip
"""Parameters that must appear at most once: which of two `redirect_uri`s counts is not a question to answer."""


@dataclass(frozen=True, slots=True)
class Page:
    """Refused with an error page (status 400): `message` is what the owner reads."""

    message: str
    app_name: str | None = None


Refusal = Page | RedirectResponse


async def validate(
    context: HttpContext, query: Sequence[tuple[str, str]], kind: FlowKind
) -> tuple[Flow | None, Refusal | None]:
    """The new flow of an authorize (or re-authenticate) request, or why there is none."""
    seen: dict[str, str] = {}
    for name, value in query:
        if name in seen and name in _SINGLE:
            return None, Page(f"400: The parameter {name} is given more than once.")
        seen.setdefault(name, value)
    app = await _app(context, seen.get("client_id", ""))
    if app is None:
        return None, Page("400: Unknown client_id: this application is not registered with fleetgate.")
    redirect_uri = app.redirect_uri(seen.get("redirect_uri"))
    if redirect_uri is None:
        if not app.redirect_uris:
            return None, Page("400: This application has no redirect URI registered.", app.name)
        return None, Page("400: The redirect_uri is not one registered for this application.", app.name)
    expected = "code" if kind is FlowKind.AUTHORIZE else "vehicle_id"
    if seen.get("response_type") != expected:
        return None, Page(f"400: response_type must be {expected}.", app.name)
    flow = Flow(
        id=new_flow_id(),
        kind=kind,
        app_id=app.id,
        app_name=app.name,
        redirect_uri=redirect_uri,
        state=seen.get("state"),
        requested="",
        mode=app.mode,
        flags=seen.get("flags"),
        user=seen.get("user"),
    )
    # From here on the redirect URI is the app's own: anything unexpected is `server_error` there.
    try:
        return await _options(context, app, flow, seen)
    except Exception:
        log.exception("Connect: validating an authorize request of app %s failed", app.id)
        return None, error_redirect(flow, ConnectError)


async def _options(
    context: HttpContext, app: Application, flow: Flow, seen: Mapping[str, str]
) -> tuple[Flow | None, Refusal | None]:
    requested = await _requested(context, flow.app_id, seen.get("scope"))
    if isinstance(requested, Page):
        return None, Page(requested.message, flow.app_name)
    scope, permissions = requested
    refused = app.not_allowed(parse_scope(permissions))
    if refused:  # Smartcar's page for a scope the app is not enabled for
        return None, Page(f"400: Application not authorized to request permission(s): {', '.join(refused)}", app.name)
    mode = seen.get("mode", flow.mode.value)
    if mode not in {m.value for m in AppMode}:
        return None, configuration_error(flow, f"mode must be live, test or simulated, not {mode!r}.")
    approval_prompt = seen.get("approval_prompt", "auto")
    if approval_prompt not in APPROVAL_PROMPTS:
        return None, configuration_error(flow, f"approval_prompt must be auto or force, not {approval_prompt!r}.")
    single_select = _BOOLEANS.get(seen.get("single_select", "false").lower())
    if single_select is None:
        return None, configuration_error(flow, "single_select must be true or false.")
    make = seen.get("make")
    if make is not None and brand(make) is None:
        return None, Page(f"400: Unknown make: {make}.", flow.app_name)
    vin = seen.get("single_select_vin")
    if vin is not None:
        vin = vin.upper()
        if not re.match(VIN_PATTERN, vin):
            return None, configuration_error(flow, f"{vin} is not a valid VIN.")
        if vin.startswith(TEST_VIN_PREFIX) and mode == AppMode.LIVE:
            return None, configuration_error(flow, TEST_VIN_IN_LIVE)
    vehicle_id = seen.get("vehicle_id")
    if flow.kind is FlowKind.REAUTHENTICATE and not vehicle_id:
        return None, configuration_error(flow, "Re-authentication needs the vehicle_id of the connection.")
    return flow.model_copy(
        update={
            "requested": permissions,
            "scope": scope,
            "mode": AppMode(mode),
            "approval_prompt": approval_prompt,
            "make": make.upper() if make else None,
            "single_select": single_select or vin is not None or flow.kind is FlowKind.REAUTHENTICATE,
            "single_select_vin": vin,
            "reauth_vehicle_id": vehicle_id if flow.kind is FlowKind.REAUTHENTICATE else None,
        }
    ), None


async def _app(context: HttpContext, client_id: str) -> Application | None:
    if not client_id:
        return None
    try:
        return await context.apps.get(client_id)
    except (NotFoundError, ValueError):
        return None


async def _requested(context: HttpContext, app_id: str, scope: str | None) -> tuple[str | None, str] | Page:
    """(the canonical `scope`, or None when from the config; the canonical requested permissions)."""
    if scope is not None:
        try:
            canonical = render_scope(parse_scope(scope))
        except ScopeError as exc:
            return Page(f"400: {exc}")
        return canonical, canonical
    try:
        permissions = derive(await context.registry.config(app_id=app_id))
    except NotFoundError:
        permissions = None
    if not permissions:
        return Page("400: The application requests no permission: it names no scope and has no Vehicle Access "
                    "configuration published.")  # fmt: skip
    return None, render_scope(permissions)
