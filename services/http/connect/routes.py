"""Connect's routes: authorize and re-authenticate, then preamble → brand select → login → grant → redirect.

Each screen is `GET /oauth/connect/{screen}?flow=ID`; its form POSTs to the same path (with `flow` in the body)
and is answered 303 to the next screen (POST-redirect-GET: back and refresh re-show a screen, never re-post).
A screen whose earlier steps are not done is deep-linking: `configuration_error`. A flow that ended (redirected
back) accepts nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from schemas.errors import (
    AccessDeniedError,
    ConnectError,
    UserReturnedError,
    VehicleIncompatibleError,
)
from services.http.accounts import LoginRefused
from services.http.brands import brand
from services.http.connect import pages
from services.http.connect.approve import Approval, approve
from services.http.connect.flow import Flow, FlowKind, FlowStore
from services.http.connect.redirect import back_to_app, configuration_error, error_redirect, vehicle_params
from services.http.connect.request import Page, validate
from services.http.connect.signin import signed_in
from services.http.context import HttpContext, get_context

log = logging.getLogger(__name__)
router = APIRouter(tags=["connect"], include_in_schema=False)
Context = Annotated[HttpContext, Depends(get_context)]
EXPIRED = "400: This Connect session has expired or does not exist. Start again from the application."
ENDED = "This Connect session has already ended. Start again from the application."
STALE_FORM = (
    "400: This form is no longer valid: it was already submitted, or it belongs to another Connect session. "
    "Nothing was changed."
)
LOGIN_ENDPOINT = "connect-login"


def flows(context: HttpContext) -> FlowStore:
    return FlowStore(context.redis, context.registry.keys, context.settings.connect_flow_ttl_s)


@router.get("/oauth/authorize")
async def authorize(request: Request, context: Context) -> Response:
    return await _start(request, context, FlowKind.AUTHORIZE)


@router.get("/oauth/reauthenticate")
async def reauthenticate(request: Request, context: Context) -> Response:
    return await _start(request, context, FlowKind.REAUTHENTICATE)


async def _start(request: Request, context: HttpContext, kind: FlowKind) -> Response:
    flow, refusal = await validate(context, request.query_params.multi_items(), kind)
    if isinstance(refusal, Page):
        return pages.error_page(request, refusal.message, app_name=refusal.app_name)
    if refusal is not None:
        return refusal
    assert flow is not None
    try:
        await flows(context).save(flow)
    except Exception:
        log.exception("Connect: storing a new flow of app %s failed", flow.app_id)
        return error_redirect(flow, ConnectError)
    return _see(pages.screen_url("preamble", flow))


def next_screen(flow: Flow) -> str:
    """The furthest screen the flow may show now."""
    if not flow.continued:
        return "preamble"
    if flow.make is None and flow.single_select_vin is None and flow.kind is FlowKind.AUTHORIZE:
        return "brand"
    return "login" if flow.user_id is None else "grant"


def _reachable(flow: Flow, screen: str) -> bool:
    return pages.SCREENS.index(screen) <= pages.SCREENS.index(next_screen(flow))


Step = Callable[[Flow], Awaitable[Response]]


async def _in_flow(request: Request, context: HttpContext, flow_id: str, screen: str, step: Step) -> Response:
    """Run a step of a live flow: an error page when there is none, `configuration_error` when the step is not
    reached yet (deep link), `server_error` for anything unexpected (the redirect URI is known good)."""
    flow = await flows(context).get(flow_id)
    if flow is None:
        return pages.error_page(request, EXPIRED)
    if flow.done:
        return pages.error_page(request, ENDED, app_name=flow.app_name, title="Connect has ended")
    if not _reachable(flow, screen):
        return await _finish(context, flow, configuration_error(flow, f"The {screen} screen was reached too early."))
    try:
        return await step(flow)
    except Exception:
        log.exception("Connect step %s failed (app %s)", screen, flow.app_id)
        return await _finish(context, flow, error_redirect(flow, ConnectError))


async def _finish(context: HttpContext, flow: Flow, response: RedirectResponse) -> RedirectResponse:
    """End the flow with its redirect back to the app: it accepts nothing more (until it expires)."""
    await flows(context).save(flow.model_copy(update={"done": True}))
    await context.redis.delete(context.registry.keys.connect_nonce(flow.id))
    return response


def _see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=pages.NO_STORE)


async def _form(request: Request) -> dict[str, list[str]]:
    form = await request.form()
    fields: dict[str, list[str]] = {}
    for name, value in form.multi_items():
        if isinstance(value, str):
            fields.setdefault(name, []).append(value)
    return fields


def _one(fields: dict[str, list[str]], name: str) -> str:
    values = fields.get(name, [])
    return values[0] if len(values) == 1 else ""


# --- preamble


@router.get("/oauth/connect/preamble")
async def preamble(request: Request, context: Context, flow: str = "") -> Response:
    async def show(found: Flow) -> Response:
        return pages.preamble(request, found)

    return await _in_flow(request, context, flow, "preamble", show)


@router.post("/oauth/connect/preamble")
async def preamble_continue(request: Request, context: Context) -> Response:
    async def advance(found: Flow) -> Response:
        found = found.model_copy(update={"continued": True})
        await flows(context).save(found)
        return _see(pages.screen_url(next_screen(found), found))

    return await _in_flow(request, context, _one(await _form(request), "flow"), "preamble", advance)


# --- brand select


@router.get("/oauth/connect/brand")
async def brand_select(request: Request, context: Context, flow: str = "") -> Response:
    async def show(found: Flow) -> Response:
        return pages.brand_select(request, found)

    return await _in_flow(request, context, flow, "brand", show)


@router.post("/oauth/connect/brand")
async def brand_chosen(request: Request, context: Context) -> Response:
    fields = await _form(request)

    async def choose(found: Flow) -> Response:
        make = _one(fields, "make").upper()
        if brand(make) is None:
            return pages.error_page(request, f"400: Unknown make: {make}.", app_name=found.app_name)
        found = found.model_copy(update={"make": make, "user_id": None, "vehicles": []})
        await flows(context).save(found)
        return _see(pages.screen_url("login", found))

    return await _in_flow(request, context, _one(fields, "flow"), "brand", choose)


@router.get("/oauth/connect/no-brand")
async def no_brand(request: Request, context: Context, flow: str = "") -> Response:
    """ "I don't see my brand": `vehicle_incompatible`, without vehicle parameters."""
    return await _leave(request, context, flow, VehicleIncompatibleError)


# --- login


@router.get("/oauth/connect/login")
async def login_screen(request: Request, context: Context, flow: str = "") -> Response:
    async def show(found: Flow) -> Response:
        return pages.login(request, found)

    return await _in_flow(request, context, flow, "login", show)


@router.get("/oauth/connect/back")
async def back(request: Request, context: Context, flow: str = "") -> Response:
    """ "Back to application" on the login screen: `user_manually_returned_to_application`."""
    return await _leave(request, context, flow, UserReturnedError)


async def _leave(request: Request, context: HttpContext, flow: str, error: type[ConnectError]) -> Response:
    """End the flow where the owner left it, back to the app with `error`."""

    async def leave(found: Flow) -> Response:
        return await _finish(context, found, error_redirect(found, error))

    return await _in_flow(request, context, flow, "preamble", leave)


@router.post("/oauth/connect/login")
async def sign_in(request: Request, context: Context) -> Response:
    fields = await _form(request)

    async def sign(found: Flow) -> Response:
        email, password = _one(fields, "username"), _one(fields, "password")
        ip = request.client.host if request.client else "unknown"
        verdict = await context.login_limiter.hit(LOGIN_ENDPOINT, found.app_id, ip)
        if not verdict.allowed:
            wait = f"Too many sign-in attempts. Try again in {verdict.retry_after_s} seconds."
            response = pages.login(request, found, error=wait, email=email, status_code=429)
            response.headers["retry-after"] = str(verdict.retry_after_s)
            return response
        try:
            account = await context.accounts.login(email, password, make=found.make, mode=found.mode)
        except LoginRefused as refused:
            return pages.login(request, found, error=refused.reason, email=email, status_code=401)
        outcome = await signed_in(context, found, account)
        if isinstance(outcome, RedirectResponse):
            return await _finish(context, found, outcome)
        found = outcome
        await flows(context).save(found)
        return _see(pages.screen_url("grant", found))

    return await _in_flow(request, context, _one(fields, "flow"), "login", sign)


# --- grant


@router.get("/oauth/connect/grant")
async def grant_screen(request: Request, context: Context, flow: str = "") -> Response:
    async def show(found: Flow) -> Response:
        return pages.grant(request, found, await flows(context).new_nonce(found))

    return await _in_flow(request, context, flow, "grant", show)


@router.post("/oauth/connect/grant")
async def grant_answer(request: Request, context: Context) -> Response:
    fields = await _form(request)

    async def answer(found: Flow) -> Response:
        if not await flows(context).consume_nonce(found, _one(fields, "nonce")):
            return pages.error_page(request, STALE_FORM, app_name=found.app_name, title="This form has expired")
        action = _one(fields, "action")
        if action == "deny":
            return await _finish(context, found, error_redirect(found, AccessDeniedError))
        if action != "approve":
            return await _regrant(request, context, found, "Choose Allow or Deny access.")
        approval = Approval(vehicle_ids=fields.get("vehicle", []), permissions=fields.get("permission", []))
        outcome = await approve(context, found, approval)
        if isinstance(outcome, str):
            return await _regrant(request, context, found, outcome)
        if isinstance(outcome, VehicleIncompatibleError):
            # The filters changed since sign-in: as at sign-in, the first vehicle chosen.
            chosen = next((v for v in found.vehicles if v.id in approval.vehicle_ids), None)
            return await _finish(context, found, error_redirect(found, outcome, vehicle_params(chosen)))
        if found.kind is FlowKind.REAUTHENTICATE:
            return await _finish(context, found, back_to_app(found, {"vehicle_id": found.reauth_vehicle_id}))
        assert found.user_id is not None
        code = await context.tokens.issue_code(found.app_id, found.user_id, found.redirect_uri)
        return await _finish(context, found, back_to_app(found, {"code": code}))

    return await _in_flow(request, context, _one(fields, "flow"), "grant", answer)


async def _regrant(request: Request, context: HttpContext, flow: Flow, error: str) -> Response:
    """The grant screen again, with what was wrong (400) and a new nonce; nothing was written."""
    return pages.grant(request, flow, await flows(context).new_nonce(flow), error=error, status_code=400)
