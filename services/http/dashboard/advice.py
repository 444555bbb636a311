"""Least-privilege advice: `/dashboard/apps/{app_id}/advice?since=7d`.

The app's decisions over a window (the usage consumer's hourly buckets, read by `services.insights.advise`, as
`fleetgate access advise` reads them) against its published config and its active connections: per permission,
its ALLOWED uses with the top targets, the connections holding and lacking it, and a verdict with what to do about
it; then VEHICLE_NOT_CAPABLE answers by target, make and powertrain. A window that does not parse (`7x`) or reaches
past the buckets' retention is said on the page (400), never a 500.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from schemas.catalog import get_catalog
from services.errors import NotFoundError
from services.http.dashboard.auth import AppScoped
from services.http.dashboard.layout import page
from services.insights.advice import Advice, PermissionUse, advise
from services.insights.window import WindowError, format_window, parse_window

router = APIRouter()
PRESETS = ("1h", "24h", "7d", "30d")
DEFAULT_WINDOW = "7d"
TOP_TARGETS = 3
NOT_CAPABLE_ROWS = 50
"""The most frequent (target, make, powertrain) the page lists; `fleetgate access advise --json` has them all."""
MAX_WINDOW_TEXT = 32
"""A longer `since` is cut before parsing (a window is a few characters): the error repeats what it got."""
OUTCOMES = ("ALLOWED", "PERMISSION_DENIED", "VEHICLE_NOT_CAPABLE", "UNAUTHORIZED", "REJECTED")

VERDICTS: dict[str, tuple[str, str]] = {
    "unused": ("unused", "Granted but never used: candidate to drop."),
    "unchecked": ("unchecked by owners", "Owners unchecked it: mark it Required or explain why you need it."),
    "stale_grants": ("stale grants", "Required but older connections lack it: they must re-authenticate."),
    "unrequested": ("not requested", "Called but not requested: add it to Vehicle Access, or stop calling it."),
    "in_use": ("in use", "Used in this window: keep it."),
    "not_held": ("not held yet", "No active connection holds it yet: nothing to judge."),
}
"""Verdict -> (badge, one line saying what it means and what to do). The first four are `advise()`'s verdicts; the
last two say why a permission has none."""


@router.get("/apps/{app_id}/advice")
async def advice_page(request: Request, signed: AppScoped, since: str = DEFAULT_WINDOW) -> Response:
    since = since[:MAX_WINDOW_TEXT]
    context: dict[str, Any] = {"since": since, "presets": _presets(since), "error": None, "advice": None}
    status_code = 200
    try:
        advice = await advise(signed.context.registry, signed.context.settings, signed.app.id, parse_window(since))
    except WindowError as exc:
        context["error"], status_code = str(exc), 400
    except NotFoundError:  # the app is the session's, so what is missing is a published config
        context["unpublished"] = True
    else:
        context["advice"] = advice_view(advice)
    context.setdefault("unpublished", False)
    return page(request, signed, "advice.html", context, active="advice", title="Advice", status_code=status_code)


def _presets(since: str) -> list[dict[str, Any]]:
    """The window links, the one equal to `since` (`24h` is `1d`) marked current."""
    try:
        chosen = parse_window(since)
    except WindowError:
        chosen = None
    return [{"since": p, "current": parse_window(p) == chosen} for p in PRESETS]


def advice_view(advice: Advice) -> dict[str, Any]:
    """What the page shows of an advice (pure)."""
    catalog = get_catalog()
    window = advice.window
    return {
        "config_version": advice.config_version,
        "connections": advice.connections,
        "window": {
            "since": format_window(window.since),
            "hours": len(window.hours),
            "start": window.start.strftime("%Y-%m-%d %H:%M"),
            "end": window.end.strftime("%Y-%m-%d %H:%M"),
        },
        "outcomes": [{"outcome": o, "count": advice.outcomes.get(o, 0)} for o in OUTCOMES],
        "decisions": sum(advice.outcomes.values()),
        "permissions": [_permission_row(p, catalog.permission(p.permission).description) for p in advice.permissions],
        "not_capable": [
            {"target": n.target, "make": n.make, "powertrain": n.powertrain, "count": n.count}
            for n in advice.not_capable[:NOT_CAPABLE_ROWS]
        ],
        "not_capable_more": max(0, len(advice.not_capable) - NOT_CAPABLE_ROWS),
        "counting": advice.counting,
        "behind": advice.behind,
        "retention_days": advice.retention_days,
    }


def _permission_row(use: PermissionUse, description: str) -> dict[str, Any]:
    verdict = use.verdict or ("in_use" if use.allowed else "not_held")
    badge, explanation = VERDICTS[verdict]
    by_use = sorted(use.allowed_by_target.items(), key=lambda item: (-item[1], item[0]))
    return {
        "permission": use.permission,
        "description": description,
        "requested": ("required" if use.required else "optional") if use.requested else "not requested",
        "allowed": use.allowed,
        "top_targets": [{"target": t, "count": n} for t, n in by_use[:TOP_TARGETS]],
        "more_targets": max(0, len(by_use) - TOP_TARGETS),
        "denied": use.denied,
        "held_by": use.held_by,
        "lacked_by": use.lacked_by,
        "verdict": verdict,
        "badge": badge,
        "explanation": explanation,
    }
