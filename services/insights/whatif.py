"""What-if before publishing: a Vehicle Access config (and Connection Filters) against the registered fleet and the
app's active connections.

- Which vehicles could connect under the filters, per make and per powertrain (all registered, and connectable).
- For each selected signal and command, the share of connectable vehicles capable of it: 1 - share is the
  VEHICLE_NOT_CAPABLE rate the app should expect for it.
- How many active connections lack what the config asks: they keep their grants until their owners re-authenticate
  and meanwhile get PERMISSION_DENIED for it; split into those lacking a required permission and those lacking
  only optional ones, and counted per permission.

Every figure is a sum over the fleet's groups (fleet.py) and the connections' distinct grants (grants.py), never a
pass over single vehicles. JSON shape (`WhatIf.to_json()`, what `fleetgate access whatif --json` prints):

    {"app_id": "my-app",
     "config": {"version": null, "signals": [...], "commands": [...], "permissions": [...], "scope": "..."},
     "filters": {"allow": ["BEV"], "allow_unknown": true},
     "fleet": {"vehicles": 100000, "connectable": 23000},
     "by_make": [{"name": "Tesla", "vehicles": 9000, "connectable": 9000}, ...],
     "by_powertrain": [{"name": "BEV", "vehicles": 22000, "connectable": 22000}, ...],
     "targets": [{"target": "<signal code>", "kind": "signal", "permission": "read_charge", "required": false,
                  "capable": 20000, "share": 0.8696}, ...],        # share: of connectable vehicles; null if none
     "connections": {"active": 3000, "lacking_required": 120, "lacking_optional_only": 400,
                     "lacking": {"read_charge": 450, ...}}}       # per permission the config requests
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from schemas.access import CommandSelection, SignalSelection, VehicleAccessConfig, derive
from schemas.application import DEFAULT_APP_ID
from schemas.catalog import Kind as TargetKind
from schemas.catalog import get_catalog
from schemas.grant import ConnectionFilters
from services.insights.grants import Grants, active_grants
from services.registry.apps import AppStore
from services.registry.config_file import config_json
from services.registry.fleet import VehicleGroup, fleet_groups
from services.registry.store import Registry


@dataclass(frozen=True, slots=True)
class FleetShare:
    """Registered vehicles of one make or one powertrain, and how many of them the filters admit."""

    name: str
    vehicles: int
    connectable: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "vehicles": self.vehicles, "connectable": self.connectable}


@dataclass(frozen=True, slots=True)
class TargetShare:
    """A selected signal or command: how many connectable vehicles are capable of it."""

    target: str
    kind: TargetKind
    permission: str
    required: bool
    capable: int
    share: float | None
    """Of the connectable vehicles; None when none can connect."""

    def to_json(self) -> dict[str, Any]:
        share = None if self.share is None else round(self.share, 4)
        return {
            "target": self.target,
            "kind": self.kind,
            "permission": self.permission,
            "required": self.required,
            "capable": self.capable,
            "share": share,
        }


@dataclass(frozen=True, slots=True)
class ConnectionsLacking:
    """The app's active connections measured against the config's permissions."""

    active: int
    lacking_required: int
    """Connections without at least one permission the config requires."""
    lacking_optional_only: int
    """Connections with every required permission but without at least one optional one."""
    lacking: dict[str, int]
    """Per permission the config requests: the connections without it."""

    def to_json(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "lacking_required": self.lacking_required,
            "lacking_optional_only": self.lacking_optional_only,
            "lacking": dict(self.lacking),
        }


@dataclass(frozen=True, slots=True)
class WhatIf:
    """A config's what-if for one app (see the module's text for the JSON shape)."""

    app_id: str
    config: VehicleAccessConfig
    filters: ConnectionFilters
    vehicles: int
    connectable: int
    by_make: list[FleetShare]
    by_powertrain: list[FleetShare]
    targets: list[TargetShare]
    connections: ConnectionsLacking

    def to_json(self) -> dict[str, Any]:
        filters = self.filters
        return {
            "app_id": self.app_id,
            "config": config_json(self.config),
            "filters": {"allow": sorted(p.value for p in filters.powertrains), "allow_unknown": filters.allow_unknown},
            "fleet": {"vehicles": self.vehicles, "connectable": self.connectable},
            "by_make": [s.to_json() for s in self.by_make],
            "by_powertrain": [s.to_json() for s in self.by_powertrain],
            "targets": [t.to_json() for t in self.targets],
            "connections": self.connections.to_json(),
        }


async def what_if(
    registry: Registry,
    config: VehicleAccessConfig,
    *,
    app_id: str = DEFAULT_APP_ID,
    filters: ConnectionFilters | None = None,
) -> WhatIf:
    """The what-if of `config` for the app, under `filters` (the app's current ones by default). NotFoundError for
    an unknown app."""
    app_id = (await AppStore(registry.redis, registry.keys).get(app_id)).id
    if filters is None:
        filters = await registry.filters(app_id)
    groups, grants = await asyncio.gather(fleet_groups(registry), active_grants(registry, app_id))
    return what_if_of(app_id, config, filters, groups, grants)


def what_if_of(
    app_id: str, config: VehicleAccessConfig, filters: ConnectionFilters, groups: Sequence[VehicleGroup], grants: Grants
) -> WhatIf:
    """The figures, from the fleet's groups and the connections' grants (pure)."""
    admitted = [g for g in groups if filters.admits(g.powertrain)]
    connectable = sum(g.vehicles for g in admitted)
    catalog = get_catalog()
    selections: list[tuple[SignalSelection | CommandSelection, TargetKind]] = [
        *((s, "signal") for s in config.signals),
        *((c, "command") for c in config.commands),
    ]
    targets = []
    for selection, kind in selections:
        capable = sum(g.vehicles for g in admitted if selection.key in g.capabilities)
        targets.append(
            TargetShare(
                target=selection.key,
                kind=kind,
                permission=catalog.signal_or_command(selection.key).permission,
                required=selection.required,
                capable=capable,
                share=capable / connectable if connectable else None,
            )
        )
    return WhatIf(
        app_id=app_id,
        config=config,
        filters=filters,
        vehicles=sum(g.vehicles for g in groups),
        connectable=connectable,
        by_make=_shares(((g.make, g) for g in groups), filters),
        by_powertrain=_shares(((g.powertrain.value, g) for g in groups), filters),
        targets=targets,
        connections=_lacking(config, grants),
    )


def _shares(named: Iterable[tuple[str, VehicleGroup]], filters: ConnectionFilters) -> list[FleetShare]:
    """Vehicles and connectable vehicles per name, the most vehicles first."""
    vehicles: Counter[str] = Counter()
    connectable: Counter[str] = Counter()
    for name, group in named:
        vehicles[name] += group.vehicles
        if filters.admits(group.powertrain):
            connectable[name] += group.vehicles
    return [FleetShare(name, n, connectable[name]) for name, n in sorted(vehicles.items(), key=lambda i: (-i[1], i[0]))]


def _lacking(config: VehicleAccessConfig, grants: Grants) -> ConnectionsLacking:
    requested = derive(config)
    lacking_required = grants.lacking_any(requested.required)
    return ConnectionsLacking(
        active=grants.connections,
        lacking_required=lacking_required,
        lacking_optional_only=grants.lacking_any(requested.granted) - lacking_required,
        lacking={name: grants.connections - grants.holding(name) for name in requested},
    )
