"""Least-privilege advice for an app: its decisions over a window (the usage consumer's hourly buckets) against its
current Vehicle Access config and its active connections' grants.

Per permission the config requests (and any other one the app's decisions named): ALLOWED uses in the window, by
target; PERMISSION_DENIED answers; the active connections holding it and lacking it; and a verdict:

- `unused`: held by connections, never used in the window: a candidate to drop from the config.
- `unchecked`: optional in the config, denied in the window: owners unchecked it on the grant screen; a candidate
  to mark Required, or to explain to owners why the app asks for it.
- `stale_grants`: required in the config, yet denied: connections made before it was required lack it until
  their owners re-authenticate.
- `unrequested`: not in the config, yet asked for: the app calls outside its config.

And VEHICLE_NOT_CAPABLE answers by target, make and powertrain. The window is read in whole hours (the buckets'
granularity: fleetgate's choice): every hour that overlaps it, so up to an hour more than asked; it cannot reach
further back than the buckets are kept (FLEETGATE_USAGE_RETENTION_DAYS).

JSON shape (`Advice.to_json()`, what `fleetgate access advise --json` prints):

    {"app_id": "my-app", "config_version": 3,
     "window": {"since": "7d", "from": "2026-01-08T09:00:00Z", "to": "2026-01-15T10:00:00Z", "hours": 169},
     "connections": 3000,                                   # active connections of the app now
     "outcomes": {"ALLOWED": 51234, "PERMISSION_DENIED": 310, ...},
     "permissions": [{"permission": "read_charge", "requested": true, "required": false, "allowed": 0,
                      "allowed_by_target": {}, "denied": 310, "held_by": 2600, "lacked_by": 400,
                      "verdict": "unchecked"}, ...],
     "unused": ["read_vin"], "unchecked": ["read_charge"], "stale_grants": [], "unrequested": ["read_tires"],
     "not_capable": [{"target": "<signal code>", "make": "Ford", "powertrain": "ICE", "count": 12}, ...],
     "aggregate": {"counting": true, "behind": 0, "retention_days": 35}}
                        # counting: the usage group exists; behind: decisions it has not counted yet
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from schemas.access import derive
from schemas.application import DEFAULT_APP_ID
from schemas.catalog import get_catalog
from schemas.decision import rfc3339
from schemas.permissions import PermissionSet
from services.insights.aggregate import read_usage, usage_lag
from services.insights.counts import UsageTotals
from services.insights.grants import Grants, active_grants
from services.insights.window import Window, WindowError, format_window
from services.registry.apps import AppStore
from services.registry.store import Registry
from services.settings import Settings

Verdict = Literal["unused", "unchecked", "stale_grants", "unrequested"]


@dataclass(frozen=True, slots=True)
class PermissionUse:
    """One permission's use by the app over the window, and what to make of it."""

    permission: str
    requested: bool
    """The current config requests it."""
    required: bool
    allowed: int
    allowed_by_target: dict[str, int]
    denied: int
    """PERMISSION_DENIED answers for it."""
    held_by: int
    lacked_by: int
    verdict: Verdict | None

    def to_json(self) -> dict[str, Any]:
        return {
            "permission": self.permission,
            "requested": self.requested,
            "required": self.required,
            "allowed": self.allowed,
            "allowed_by_target": dict(self.allowed_by_target),
            "denied": self.denied,
            "held_by": self.held_by,
            "lacked_by": self.lacked_by,
            "verdict": self.verdict,
        }


@dataclass(frozen=True, slots=True)
class NotCapable:
    target: str
    make: str
    powertrain: str
    count: int

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "make": self.make, "powertrain": self.powertrain, "count": self.count}


@dataclass(frozen=True, slots=True)
class Advice:
    """An app's least-privilege advice over a window (see the module's text for the JSON shape)."""

    app_id: str
    config_version: int | None
    window: Window
    connections: int
    outcomes: dict[str, int]
    permissions: list[PermissionUse]
    not_capable: list[NotCapable]
    counting: bool
    """Whether the usage group exists (a usage consumer ran at least once)."""
    behind: int
    """Decisions the usage group has not counted yet (its lag and its pending entries)."""
    retention_days: int

    def having(self, verdict: Verdict) -> list[str]:
        return [p.permission for p in self.permissions if p.verdict == verdict]

    def to_json(self) -> dict[str, Any]:
        window = self.window
        return {
            "app_id": self.app_id,
            "config_version": self.config_version,
            "window": {
                "since": format_window(window.since),
                "from": rfc3339(window.start),
                "to": rfc3339(window.end),
                "hours": len(window.hours),
            },
            "connections": self.connections,
            "outcomes": dict(self.outcomes),
            "permissions": [p.to_json() for p in self.permissions],
            **{verdict: self.having(verdict) for verdict in ("unused", "unchecked", "stale_grants", "unrequested")},
            "not_capable": [n.to_json() for n in self.not_capable],
            "aggregate": {"counting": self.counting, "behind": self.behind, "retention_days": self.retention_days},
        }


async def advise(
    registry: Registry, settings: Settings, app_id: str = DEFAULT_APP_ID, since: timedelta = timedelta(days=7)
) -> Advice:
    """The app's advice over the `since` before now. NotFoundError for an unknown app or one without a published
    config; WindowError for a window longer than the buckets are kept."""
    if since > timedelta(days=settings.usage_retention_days):
        raise WindowError(
            f"window {format_window(since)} reaches further back than usage is kept "
            f"({settings.usage_retention_days} days, FLEETGATE_USAGE_RETENTION_DAYS)"
        )
    app_id = (await AppStore(registry.redis, registry.keys).get(app_id)).id
    config = await registry.config(app_id=app_id)
    window = Window.ending(since)
    totals = await read_usage(registry, app_id, window)
    counting, behind = await usage_lag(registry, settings.usage_group)
    grants = await active_grants(registry, app_id)
    return Advice(
        app_id=app_id,
        config_version=config.version,
        window=window,
        connections=grants.connections,
        outcomes=dict(totals.outcomes),
        permissions=permission_uses(derive(config), totals, grants),
        not_capable=[
            NotCapable(target, make, powertrain, n)
            for (target, make, powertrain), n in sorted(totals.not_capable.items(), key=lambda i: (-i[1], i[0]))
        ],
        counting=counting,
        behind=behind,
        retention_days=settings.usage_retention_days,
    )


def permission_uses(requested: PermissionSet, totals: UsageTotals, grants: Grants) -> list[PermissionUse]:
    """Each permission's use and verdict (pure): those the config requests, in name order, then any other the
    decisions named."""
    others = sorted((set(totals.allowed) | set(totals.denied)) - set(requested))
    uses = []
    for name in [*requested, *others]:
        is_requested = name in requested
        required = is_requested and requested.is_required(name)
        allowed, denied, held = totals.allowed[name], totals.denied[name], grants.holding(name)
        uses.append(
            PermissionUse(
                permission=name,
                requested=is_requested,
                required=required,
                allowed=allowed,
                allowed_by_target=_targets_of(name, totals),
                denied=denied,
                held_by=held,
                lacked_by=grants.connections - held,
                verdict=_verdict(is_requested, required, allowed, denied, held),
            )
        )
    return uses


def _verdict(requested: bool, required: bool, allowed: int, denied: int, held: int) -> Verdict | None:
    if denied and not requested:
        return "unrequested"
    if denied:
        return "stale_grants" if required else "unchecked"
    if requested and held and not allowed:
        return "unused"
    return None


def _targets_of(permission: str, totals: UsageTotals) -> dict[str, int]:
    catalog = get_catalog()
    return {
        target: n
        for target, n in sorted(totals.allowed_targets.items())
        if catalog.signal_or_command(target).permission == permission
    }
