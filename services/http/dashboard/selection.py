"""The Vehicle Access editor's selection: form or query fields <-> a config, and what the page shows of it.

Fields are those of `fleetgate access derive`: `signal` (a code, repeated), `command` (a name, repeated) and
`required` (a selected code or name, repeated). A Required toggle left on for an unselected item is ignored (the
page disables it; without JavaScript it is simply still there). The permissions shown are `derive()`'s and the
scope string `render_scope()`'s: the editor never reimplements the rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlencode

from pydantic import ValidationError

from schemas.access import VehicleAccessConfig, derive
from schemas.application import Application
from schemas.catalog import get_catalog
from schemas.errors import FleetgateError, describe_validation_error
from schemas.scope import render_scope

FIELDS = ("signal", "command", "required")


@dataclass(frozen=True, slots=True)
class Selection:
    signals: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    required: frozenset[str] = frozenset()

    @classmethod
    def from_fields(cls, fields: Iterable[tuple[str, Any]]) -> Selection:
        """From form or query items; other fields are ignored, repeats collapse."""
        found: dict[str, list[str]] = {name: [] for name in FIELDS}
        for name, value in fields:
            if name in found and isinstance(value, str) and value:
                found[name].append(value)
        chosen = {*found["signal"], *found["command"]}
        return cls(
            tuple(dict.fromkeys(found["signal"])),
            tuple(dict.fromkeys(found["command"])),
            frozenset(found["required"]) & chosen,
        )

    @classmethod
    def of_config(cls, config: VehicleAccessConfig | None) -> Selection:
        if config is None:
            return cls()
        return cls(
            tuple(s.code for s in config.signals),
            tuple(c.name for c in config.commands),
            frozenset(s.key for s in (*config.signals, *config.commands) if s.required),
        )

    @property
    def empty(self) -> bool:
        return not self.signals and not self.commands

    def config(self) -> VehicleAccessConfig:
        """The config it makes; raises FleetgateError (unknown names, nothing selected) with a readable message."""
        try:
            return VehicleAccessConfig.select(self.signals, self.commands, self.required)
        except ValidationError as exc:
            raise FleetgateError(describe_validation_error(exc)) from None

    def query(self) -> str:
        """The selection as a query string (for the Connect preview's links)."""
        items = [("signal", s) for s in self.signals] + [("command", c) for c in self.commands]
        return urlencode(items + [("required", r) for r in sorted(self.required)])


def permissions_panel(selection: Selection, app: Application) -> dict[str, Any]:
    """What the derived-permissions panel shows (templates/dashboard/_permissions.html)."""
    if selection.empty:
        return {"permissions": [], "scope": "", "error": None, "not_allowed": [], "selected": 0}
    try:
        permissions = derive(selection.config())
    except FleetgateError as exc:
        return {"permissions": [], "scope": "", "error": str(exc), "not_allowed": [], "selected": 0}
    catalog = get_catalog()
    return {
        "permissions": [
            {**item, "description": catalog.permission(item["name"]).description} for item in permissions.items()
        ],
        "scope": render_scope(permissions),
        "error": None,
        "not_allowed": app.not_allowed(permissions),
        "selected": len(selection.signals) + len(selection.commands),
    }


@cache
def catalog_rows() -> dict[str, Any]:
    """The catalog as the editor lists it: signals by Signal Schema group (the code's first part), then commands;
    in the catalog file's order, each row with the text the search box matches (name, code, group, permission)."""
    catalog = get_catalog()
    groups: dict[str, list[dict[str, str]]] = {}
    for signal in catalog.signals:
        groups.setdefault(signal.group, []).append(
            {
                "key": signal.code,
                "name": signal.name,
                "permission": signal.permission,
                "search": " ".join((signal.name, signal.code, signal.group, signal.permission)).lower(),
            }
        )
    commands = [
        {
            "key": command.name,
            "name": command.description.rstrip("."),
            "permission": command.permission,
            "search": " ".join((command.name, command.description, "command", command.permission)).lower(),
        }
        for command in catalog.commands
    ]
    return {"groups": [{"name": name, "rows": rows} for name, rows in groups.items()], "commands": commands}
