"""What-if before publishing: `/dashboard/apps/{app_id}/access/whatif`.

For the selection being edited (query fields as the editor's, see selection.py; the editor's "What if I publish
this?" button sends them), a published `version`, or by default the current one: `services.insights.what_if()`
against the registered fleet and the app's active connections, as `fleetgate access whatif` computes it. The
vehicles that could connect per powertrain and make, each selected signal's and command's share of capable
vehicles (and so the VEHICLE_NOT_CAPABLE rate to expect), and the connections lacking what the config asks.

Under the app's saved Connection Filters, or the four choices ticked on the page (`filters=chosen` and `allow`,
`allow_unknown` fields, as the Connection Filters page posts them; nothing is saved here). Rendered on the server:
about a second at 100,000 vehicles (`python -m bench.whatif`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import QueryParams

from schemas.access import VehicleAccessConfig, derive
from schemas.catalog import get_catalog
from schemas.errors import FleetgateError
from schemas.grant import ConnectionFilters, FilterPowertrain
from services.http.dashboard.access import published
from services.http.dashboard.auth import AppScoped, SignedIn
from services.http.dashboard.filters import CHOICES
from services.http.dashboard.layout import page
from services.http.dashboard.selection import Selection
from services.insights.whatif import FleetShare, WhatIf, what_if

router = APIRouter()
LOW_SHARE = 0.5
"""Below this share of capable vehicles a selection is marked low: most requests for it will be not capable."""
PARTIAL_SHARE = 0.9
"""Below this (and not low), marked partial: one request in ten or more will be not capable."""


@router.get("/apps/{app_id}/access/whatif")
async def whatif_page(request: Request, signed: AppScoped) -> Response:
    query = request.query_params
    selection = Selection.from_fields(query.multi_items())
    version = query.get("version", "") if selection.empty else ""
    config, source, error = await _config(signed, selection, version)
    chosen = _chosen_filters(query)
    result = None
    if config is not None:
        computed = await what_if(signed.context.registry, config, app_id=signed.app.id, filters=chosen)
        result = what_if_view(computed, await published(signed) if not selection.empty else None)
    context = {
        "selection": selection,
        "version": version,
        "from_editor": not selection.empty,
        "source": source,
        "error": error,
        "result": result,
        "not_allowed": [] if config is None else signed.app.not_allowed(derive(config)),
        "tried_filters": chosen is not None,
        "choices": _choices(chosen or await signed.context.registry.filters(signed.app.id)),
        "low_share": LOW_SHARE,
        "partial_share": PARTIAL_SHARE,
    }
    status_code = 400 if error else 200
    title = "What-if"
    return page(request, signed, "whatif.html", context, active="whatif", title=title, status_code=status_code)


async def _config(
    signed: SignedIn, selection: Selection, version: str
) -> tuple[VehicleAccessConfig | None, str, str | None]:
    """The config to compute, what it is, and why there is none: a selection that makes no config (its error), or
    nothing published (no error: the page's empty state)."""
    if not selection.empty:
        try:
            return selection.config(), "the selection being edited (not published)", None
        except FleetgateError as exc:
            return None, "the selection being edited", str(exc)
    config = await published(signed, int(version) if version.isdigit() and 0 < int(version) < 2**53 else None)
    return config, "nothing published yet" if config is None else f"published version {config.version}", None


def _chosen_filters(query: QueryParams) -> ConnectionFilters | None:
    """The filters ticked on the page, or None (the app's saved ones) when the page's filter form was not sent."""
    if query.get("filters") != "chosen":
        return None
    allowed = set(query.getlist("allow"))
    return ConnectionFilters(
        powertrains=frozenset(p for p in FilterPowertrain if p.value in allowed),
        allow_unknown=query.get("allow_unknown") == "on",
    )


def _choices(filters: ConnectionFilters) -> list[dict[str, Any]]:
    """The page's four filter boxes, ticked as `filters`."""
    boxes = [
        {"name": "allow", "value": value, "label": label, "checked": FilterPowertrain(value) in filters.powertrains}
        for value, label, _ in CHOICES
    ]
    return [*boxes, {"name": "allow_unknown", "value": "on", "label": "UNKNOWN", "checked": filters.allow_unknown}]


def what_if_view(result: WhatIf, current: VehicleAccessConfig | None = None) -> dict[str, Any]:
    """What the page shows of a what-if (pure); each selection not in `current` (the published config, when an
    edited selection is computed) is marked new."""
    catalog = get_catalog()
    before = None if current is None else {s.key for s in (*current.signals, *current.commands)}
    requested = derive(result.config)
    lacking = result.connections
    filters = result.filters
    return {
        "current_version": None if current is None else current.version,
        "vehicles": result.vehicles,
        "connectable": result.connectable,
        "connectable_share": _share(result.connectable, result.vehicles),
        "filters": ", ".join(sorted(filters.powertrains)) or "any known powertrain",
        "allow_unknown": filters.allow_unknown,
        "by_powertrain": _fleet_rows(result.by_powertrain, result.connectable),
        "by_make": _fleet_rows(result.by_make, result.connectable),
        "targets": [
            {
                "target": t.target,
                "name": catalog.signal(t.target).name
                if t.kind == "signal"
                else catalog.command(t.target).description.rstrip("."),
                "kind": t.kind,
                "permission": t.permission,
                "required": t.required,
                "capable": t.capable,
                "new": before is not None and t.target not in before,
                **_capable_share(t.share),
            }
            for t in result.targets
        ],
        "active": lacking.active,
        "lacking_required": lacking.lacking_required,
        "lacking_optional_only": lacking.lacking_optional_only,
        "complete": lacking.active - lacking.lacking_required - lacking.lacking_optional_only,
        "lacking": [
            {
                "permission": name,
                "required": requested.is_required(name),
                "connections": n,
                "share": _share(n, lacking.active),
            }
            for name, n in lacking.lacking.items()
        ],
    }


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _fleet_rows(shares: list[FleetShare], connectable: int) -> list[dict[str, Any]]:
    """Registered and connectable vehicles of each make or powertrain, and its share of the connectable fleet."""
    rows = []
    for s in shares:
        share = _share(s.connectable, connectable)
        rows.append({"name": s.name, "vehicles": s.vehicles, "connectable": s.connectable, "share": share})
    return rows


def _capable_share(share: float | None) -> dict[str, Any]:
    """A selection's capable share and not-capable rate, from one rounding (the two add up to 100 %), and its
    level: `low`, `partial` or `ok` (`none` when no vehicle could connect)."""
    if share is None:
        return {"share": None, "capable_pct": "n/a", "not_capable_pct": "n/a", "level": "none"}
    tenths = round(share * 1000)
    level = "low" if share < LOW_SHARE else "partial" if share < PARTIAL_SHARE else "ok"
    return {
        "share": share,
        "capable_pct": f"{tenths / 10:.1f} %",
        "not_capable_pct": f"{(1000 - tenths) / 10:.1f} %",
        "level": level,
    }
