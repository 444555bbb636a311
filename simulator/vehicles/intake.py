"""What the vehicles service takes from the decisions streams: the ALLOWED decisions it answers, and the registry
records of the vehicles they name (cached: a vehicle's make and capabilities rarely change)."""

from __future__ import annotations

import logging
import time
from typing import Any

from pydantic_core import from_json

from schemas.vehicle import Vehicle
from services.registry.store import Registry
from simulator.vehicles import metrics

log = logging.getLogger("fleetgate.vehicles")

MAX_CACHED = 500_000


def allowed_decision(entry_id: bytes, fields: dict[bytes, bytes]) -> dict[str, Any] | None:
    """The decision an entry carries when it is ALLOWED and complete; None for any other (acknowledged only)."""
    data = fields.get(b"data")
    if data is None or b'"ALLOWED"' not in data:  # a byte search spares parsing every denial
        metrics.NOT_ALLOWED.inc()
        return None
    try:
        decision = from_json(data)  # pydantic-core's parser: 0.8 us for a decision, json.loads 2.4
        if not isinstance(decision, dict):
            raise ValueError("not a JSON object")
        if decision.get("outcome") != "ALLOWED" or decision.get("kind") not in ("signal", "command"):
            metrics.NOT_ALLOWED.inc()
            return None
        for name in ("request_id", "decision_id", "connection_id", "vehicle_id", "target"):
            if not isinstance(decision.get(name), str):
                raise ValueError(f"no {name}")
    except ValueError as exc:
        log.warning("decision entry %s is unreadable (%s); acknowledged without an answer", entry_id.decode(), exc)
        metrics.SKIPPED.labels("unreadable").inc()
        return None
    return dict(decision)


class VehicleCache:
    """Registry records by vehicle id, each re-read `ttl_s` after it was read."""

    def __init__(self, registry: Registry, ttl_s: float) -> None:
        self.registry = registry
        self.ttl_s = ttl_s
        self._cached: dict[str, tuple[Vehicle | None, float]] = {}

    async def get(self, vehicle_ids: set[str]) -> dict[str, Vehicle | None]:
        """Each vehicle's record (None: not registered), reading the registry once for those not cached."""
        now = time.monotonic()
        found = {v: c[0] for v in vehicle_ids if (c := self._cached.get(v)) is not None and c[1] > now}
        missing = sorted(vehicle_ids - found.keys())
        if missing:
            if len(self._cached) > MAX_CACHED:
                self._cached.clear()
            expires = now + self.ttl_s
            for vehicle_id, vehicle in zip(missing, await self.registry.vehicles_by_id(missing), strict=True):
                self._cached[vehicle_id] = (vehicle, expires)
                found[vehicle_id] = vehicle
        return found
