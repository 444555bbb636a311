"""What the usage consumer counts of each decision, and how a bucket's fields are spelt. Pure: no Redis.

A bucket is a hash per app, shard and epoch hour (`ShardKeys.usage`), each field a count:

| field                            | counts                                                                  |
|----------------------------------|-------------------------------------------------------------------------|
| `o|{outcome}`                    | the app's decisions with that outcome                                   |
| `a|{permission}`                 | ALLOWED decisions, by the permission they used                          |
| `t|{target}`                     | ALLOWED decisions, by signal code or command name                       |
| `d|{permission}`                 | PERMISSION_DENIED decisions, by the permission the connection lacked    |
| `n|{target}|{powertrain}|{make}` | VEHICLE_NOT_CAPABLE decisions, by target and the vehicle's powertrain and make |

A vehicle no longer registered counts as make `?` and powertrain `?`; the make comes last, as it may hold a `|`.

A decision's hour is that of its entry id on the decisions stream (when the gatekeeper wrote it), not its
`decided_at`: the id is at hand without decoding a date, and the two differ by a batch's time. Decisions without
an app (their connection was unknown) are not counted: they belong to no app.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, NotRequired

from pydantic import TypeAdapter, ValidationError
from typing_extensions import TypedDict  # pydantic reads only this one's before Python 3.12

from schemas.application import AppId
from schemas.catalog import get_catalog
from schemas.errors import describe_validation_error
from schemas.problems import Outcome
from services.streams import split_id

HOUR_MS = 3_600_000
UNREGISTERED = "?"
"""The make and powertrain counted for a vehicle no longer in the registry."""
VehicleKind = tuple[str, str]
"""A vehicle's (powertrain, make): what a VEHICLE_NOT_CAPABLE count is split by."""

OUTCOME, ALLOWED_BY_PERMISSION, ALLOWED_BY_TARGET, DENIED, NOT_CAPABLE = "o", "a", "t", "d", "n"
_ALLOWED: Final = Outcome.ALLOWED.value
_DENIED: Final = Outcome.PERMISSION_DENIED.value
_NOT_CAPABLE: Final = Outcome.VEHICLE_NOT_CAPABLE.value
_NEEDS_TARGET = frozenset({_ALLOWED, _DENIED, _NOT_CAPABLE})


class _Counted(TypedDict):
    """The fields of a decision that are counted; the rest of its JSON is skipped unread."""

    outcome: Outcome
    permission: str | None
    target: str | None
    vehicle_id: str | None
    app_id: NotRequired[AppId | None]


_READ = TypeAdapter(_Counted).validator.validate_json
_catalog = get_catalog()
_PERMISSIONS = frozenset(_catalog.permission_names)
_TARGETS = frozenset(s.code for s in _catalog.signals) | frozenset(c.name for c in _catalog.commands)


class MalformedDecisionError(ValueError):
    """A decisions entry that is not a decision the contract allows (skipped and acknowledged, never counted)."""


@dataclass(frozen=True, slots=True)
class Use:
    """What is counted of one decision."""

    entry_id: bytes
    hour: int
    app_id: str | None
    outcome: str
    permission: str | None
    target: str | None
    vehicle_id: str | None


def read_use(entry_id: bytes, fields: Mapping[bytes, bytes]) -> Use:
    """A decisions entry's countable fields; MalformedDecisionError if it is not a decision."""
    if not fields:  # XAUTOCLAIM's view of an entry deleted from the stream while pending
        raise MalformedDecisionError("deleted from the stream")
    data = fields.get(b"data")
    if data is None:
        raise MalformedDecisionError("no `data` field")
    try:
        found = _READ(data)
    except ValidationError as exc:
        raise MalformedDecisionError(describe_validation_error(exc).replace("\n", "; ")) from exc
    outcome, permission, target = found["outcome"].value, found["permission"], found["target"]
    if permission is not None and permission not in _PERMISSIONS:
        raise MalformedDecisionError(f"unknown permission {permission!r}")
    if outcome in _NEEDS_TARGET and (target not in _TARGETS or permission is None):
        raise MalformedDecisionError(f"an {outcome} decision needs a known target and its permission")
    hour = split_id(entry_id)[0] // HOUR_MS
    return Use(entry_id, hour, found.get("app_id"), outcome, permission, target, found["vehicle_id"])


def tally(uses: Iterable[Use], kinds: Mapping[str, VehicleKind]) -> dict[tuple[str, int], Counter[str]]:
    """The counts of a batch per (app, hour): what its bucket's fields grow by. `kinds` holds the powertrain and
    make of every vehicle of a VEHICLE_NOT_CAPABLE decision (a missing one counts as unregistered)."""
    buckets: dict[tuple[str, int], Counter[str]] = {}
    for use in uses:
        if use.app_id is None:
            continue
        counts = buckets.get((use.app_id, use.hour))
        if counts is None:
            counts = buckets[use.app_id, use.hour] = Counter()
        outcome = use.outcome
        counts[f"{OUTCOME}|{outcome}"] += 1
        if outcome == _ALLOWED:
            counts[f"{ALLOWED_BY_PERMISSION}|{use.permission}"] += 1
            counts[f"{ALLOWED_BY_TARGET}|{use.target}"] += 1
        elif outcome == _DENIED:
            counts[f"{DENIED}|{use.permission}"] += 1
        elif outcome == _NOT_CAPABLE:
            powertrain, make = kinds.get(use.vehicle_id or "", (UNREGISTERED, UNREGISTERED))
            counts[f"{NOT_CAPABLE}|{use.target}|{powertrain}|{make}"] += 1
    return buckets


@dataclass(slots=True)
class UsageTotals:
    """The sum of an app's buckets over some hours, by kind of count."""

    outcomes: Counter[str] = field(default_factory=Counter)
    allowed: Counter[str] = field(default_factory=Counter)
    """ALLOWED decisions by permission."""
    allowed_targets: Counter[str] = field(default_factory=Counter)
    denied: Counter[str] = field(default_factory=Counter)
    """PERMISSION_DENIED decisions by permission."""
    not_capable: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """VEHICLE_NOT_CAPABLE decisions by (target, make, powertrain)."""

    @classmethod
    def of_buckets(cls, buckets: Iterable[Mapping[bytes, bytes]]) -> UsageTotals:
        """The sum of buckets (HGETALL's replies). A week of a busy app is some 100,000 fields over a few hundred
        names: each field is only added up, and each name parsed once. A kind of field this version does not know
        is skipped."""
        summed: dict[bytes, int] = {}
        for fields in buckets:
            for name, value in fields.items():
                summed[name] = summed.get(name, 0) + int(value)
        totals = cls()
        for name, count in summed.items():
            totals._add(name.decode(), count)
        return totals

    def _add(self, name: str, count: int) -> None:
        kind, _, rest = name.partition("|")
        if kind == OUTCOME:
            self.outcomes[rest] += count
        elif kind == ALLOWED_BY_PERMISSION:
            self.allowed[rest] += count
        elif kind == ALLOWED_BY_TARGET:
            self.allowed_targets[rest] += count
        elif kind == DENIED:
            self.denied[rest] += count
        elif kind == NOT_CAPABLE:
            target, powertrain, make = rest.split("|", 2)
            self.not_capable[target, make, powertrain] += count
