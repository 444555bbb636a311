"""What the simulator knows, independently of the gatekeeper: each vehicle, its connection and grant, and when
owners change them. From it alone the simulator says which outcome it intends for each request.

`intended()` is the simulator's own reading of the precedence table in docs/contract.md, written against its own
records, not a call to `schemas.decision.decide()`: a mismatch between the two is what the load test exists to find.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from schemas.catalog import get_catalog
from schemas.powertrain import Powertrain

# Requests this close to an owner's change may see either side of it: the gatekeeper honours a change within a
# second of its event (a bound tested elsewhere), and the processes' clocks and the change's own call differ.
SETTLE_BEFORE_S = 0.25
SETTLE_AFTER_S = 1.5


class Intended(StrEnum):
    ALLOWED = "ALLOWED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    VEHICLE_NOT_CAPABLE = "VEHICLE_NOT_CAPABLE"
    UNAUTHORIZED = "UNAUTHORIZED"
    REJECTED = "REJECTED"


@dataclass(frozen=True, slots=True)
class Grant:
    """A connection's state: active with these permission names, or revoked."""

    permissions: frozenset[str]
    active: bool = True


@dataclass(frozen=True, slots=True)
class OwnerChange:
    """An owner revokes or re-authenticates at `at_s` seconds into the load."""

    at_s: float
    connection_id: str
    kind: str  # "revoke" or "reauth"
    after: Grant
    scope: str | None = None
    """For a re-auth: the scope the owner grants."""


@dataclass(frozen=True, slots=True)
class SimVehicle:
    id: str
    make: str
    powertrain: Powertrain
    profile: int
    """Index into World.profiles: many vehicles share one capability set."""
    connection_id: str | None
    grant: Grant | None


@dataclass(frozen=True)
class World:
    vehicles: tuple[SimVehicle, ...]
    profiles: tuple[frozenset[str], ...]
    selected_signals: tuple[str, ...]
    """The app's Vehicle Access selection, most popular first."""
    selected_commands: tuple[str, ...]
    changes: tuple[OwnerChange, ...] = ()
    _change_by_connection: dict[str, OwnerChange] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_change_by_connection", {c.connection_id: c for c in self.changes})

    def change_of(self, connection_id: str) -> OwnerChange | None:
        return self._change_by_connection.get(connection_id)

    def intended(
        self,
        vehicle: SimVehicle,
        target: str,
        *,
        own_connection: bool,
        issued_s: float,
        decided_s: float,
        applied: tuple[float, float] | None = None,
    ) -> frozenset[Intended]:
        """The outcomes acceptable for a request issued and decided at these times (seconds into the load).

        `applied` is when the owner's change to this connection was being made (its call's start and end, as
        the load test recorded them; None: not made yet). One outcome, or both sides of the change when the
        request was issued before it (or just after) and decided after it began: the gatekeeper decides on the
        registry as it is when it decides.
        """
        grant = vehicle.grant if own_connection else None
        change = self.change_of(vehicle.connection_id) if own_connection and vehicle.connection_id else None
        if change is None or applied is None or decided_s < applied[0] - SETTLE_BEFORE_S:
            return frozenset({self._outcome(vehicle, grant, target)})
        after = self._outcome(vehicle, change.after, target)
        if issued_s > applied[1] + SETTLE_AFTER_S:
            return frozenset({after})
        return frozenset({self._outcome(vehicle, grant, target), after})

    def _outcome(self, vehicle: SimVehicle, grant: Grant | None, target: str) -> Intended:
        catalog = get_catalog()
        try:
            needed = catalog.signal_or_command(target).permission
        except ValueError:
            return Intended.REJECTED
        if grant is None or not grant.active:
            return Intended.UNAUTHORIZED
        if target not in self.profiles[vehicle.profile]:
            return Intended.VEHICLE_NOT_CAPABLE
        if needed not in grant.permissions:
            return Intended.PERMISSION_DENIED
        return Intended.ALLOWED
