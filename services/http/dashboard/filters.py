"""Connection Filters: `/dashboard/apps/{app_id}/filters`.

The four choices (ICE including HEV, BEV, PHEV, allow UNKNOWN), each with the share of the registered fleet it
covers, and the share the whole choice admits (`ConnectionFilters.admits`, the rule Connect applies). The fleet is
read once per page (registry/fleet.py). "Show" re-renders for the ticked choice without saving; "Save" stores
it as `fleetgate filters set` does.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from schemas.grant import ConnectionFilters, FilterPowertrain
from schemas.powertrain import Powertrain
from services.http.dashboard.auth import AppScoped, CheckedForm, SignedIn
from services.http.dashboard.layout import app_base, page, see
from services.registry.fleet import powertrain_counts

router = APIRouter()
CHOICES = (
    ("ICE", "ICE (includes HEV)", (Powertrain.ICE, Powertrain.HEV)),
    ("BEV", "BEV", (Powertrain.BEV,)),
    ("PHEV", "PHEV", (Powertrain.PHEV,)),
)


@router.get("/apps/{app_id}/filters")
async def filters_page(request: Request, signed: AppScoped, saved: str = "") -> Response:
    current = await signed.context.registry.filters(signed.app.id)
    return await _render(request, signed, current, current, saved=saved == "1")


@router.post("/apps/{app_id}/filters")
async def filters_submit(request: Request, signed: AppScoped, form: CheckedForm) -> Response:
    allowed = {v for v in form.getlist("allow") if isinstance(v, str)}
    chosen = ConnectionFilters(
        powertrains=frozenset(p for p in FilterPowertrain if p.value in allowed),
        allow_unknown=form.get("allow_unknown") == "on",
    )
    current = await signed.context.registry.filters(signed.app.id)
    if form.get("action") != "save":
        return await _render(request, signed, chosen, current)
    await signed.context.registry.set_filters(chosen, signed.app.id)
    return see(f"{app_base(signed.app.id)}/filters?saved=1")


def fleet_shares(counts: Counter[Powertrain], filters: ConnectionFilters) -> dict[str, Any]:
    """Each choice's vehicles and share of the fleet, and what `filters` admits in all."""
    total = sum(counts.values())

    def share(n: int) -> float:
        return n / total if total else 0.0

    rows = []
    for value, label, powertrains in CHOICES:
        n = sum(counts[p] for p in powertrains)
        rows.append({"value": value, "label": label, "vehicles": n, "share": share(n),
                     "checked": FilterPowertrain(value) in filters.powertrains})  # fmt: skip
    unknown = counts[Powertrain.UNKNOWN]
    admitted = sum(n for p, n in counts.items() if filters.admits(p))
    return {
        "total": total,
        "rows": rows,
        "unknown": {"vehicles": unknown, "share": share(unknown), "checked": filters.allow_unknown},
        "admitted": admitted,
        "admitted_share": share(admitted),
    }


async def _render(
    request: Request, signed: SignedIn, shown: ConnectionFilters, current: ConnectionFilters, *, saved: bool = False
) -> Response:
    counts = await powertrain_counts(signed.context.registry)
    context = {
        "fleet": fleet_shares(counts, shown),
        "unsaved": shown != current,
        "saved": saved,
        "any_powertrain": not shown.powertrains,
    }
    return page(request, signed, "filters.html", context, active="filters", title="Connection Filters")
