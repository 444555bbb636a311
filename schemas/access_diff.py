"""What changed between two Vehicle Access configs: selections added, removed, made required or optional, and the
permissions the derived set gained or lost (or whose Required changed)."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.access import VehicleAccessConfig, derive


@dataclass(frozen=True, slots=True)
class Changes:
    """Names (signal codes, command names or permissions), each list sorted."""

    added: list[str]
    removed: list[str]
    made_required: list[str]
    made_optional: list[str]

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.made_required or self.made_optional)


@dataclass(frozen=True, slots=True)
class AccessDiff:
    signals: Changes
    commands: Changes
    permissions: Changes

    @property
    def empty(self) -> bool:
        return self.signals.empty and self.commands.empty and self.permissions.empty


def diff_configs(old: VehicleAccessConfig, new: VehicleAccessConfig) -> AccessDiff:
    """From `old` to `new`."""
    old_permissions, new_permissions = derive(old), derive(new)
    return AccessDiff(
        signals=_changes(
            {s.code: s.required for s in old.signals},
            {s.code: s.required for s in new.signals},
        ),
        commands=_changes(
            {c.name: c.required for c in old.commands},
            {c.name: c.required for c in new.commands},
        ),
        permissions=_changes(
            {p: old_permissions.is_required(p) for p in old_permissions},
            {p: new_permissions.is_required(p) for p in new_permissions},
        ),
    )


def _changes(old: dict[str, bool], new: dict[str, bool]) -> Changes:
    kept = old.keys() & new.keys()
    return Changes(
        added=sorted(new.keys() - old.keys()),
        removed=sorted(old.keys() - new.keys()),
        made_required=sorted(k for k in kept if new[k] and not old[k]),
        made_optional=sorted(k for k in kept if old[k] and not new[k]),
    )
