"""What a signal's body is computed from: the vehicle, its profile, its stored state and the instant's projection."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from schemas.vehicle import Vehicle
from simulator.vehicles.physics import Now
from simulator.vehicles.profile import Profile
from simulator.vehicles.state import VehicleState


class Ctx(NamedTuple):  # a NamedTuple: one per read, built in 0.16 us (a frozen dataclass: 0.36)
    vehicle: Vehicle
    profile: Profile
    state: VehicleState
    now: Now


Value = Callable[[Ctx], Any]
"""A scalar signal's value: the reader wraps it as {"value": ..., "unit": <the catalog's unit>}."""
Body = Callable[[Ctx], dict[str, Any]]
"""A signal's whole body."""


def iso(t: float) -> str:
    """RFC 3339 UTC with milliseconds, as Smartcar writes times in bodies."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def grid(rows: int, columns: int, entry: Callable[[int, int], dict[str, Any]]) -> dict[str, Any]:
    """Smartcar's body for per-position values (doors, windows, tires): row-major from 0."""
    values = [{"row": r, "column": c, **entry(r, c)} for r in range(rows) for c in range(columns)]
    return {"values": values, "rowCount": rows, "columnCount": columns}
