"""The powertrain and make of vehicles, as the usage consumer splits VEHICLE_NOT_CAPABLE counts by them.

Read from the registry (one MGET for a batch's misses) and kept `ttl` seconds, as the gatekeeper's RegistryCache
keeps vehicles: a vehicle's make and powertrain practically never change, and only not-capable decisions ask.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from services.insights.counts import UNREGISTERED, VehicleKind
from services.registry.store import Registry


class VehicleKinds:
    """Vehicle id -> (powertrain, make), cached; an unregistered vehicle is (`?`, `?`)."""

    def __init__(self, registry: Registry, ttl: float, max_entries: int = 100_000) -> None:
        self.registry = registry
        self.ttl = ttl
        self.max_entries = max_entries
        self._kinds: dict[str, tuple[VehicleKind, float]] = {}

    async def of(self, vehicle_ids: Iterable[str]) -> dict[str, VehicleKind]:
        """The kind of each vehicle named, from the cache or the registry."""
        now = time.monotonic()
        if len(self._kinds) > self.max_entries:
            self._kinds.clear()  # bounded memory whatever ids arrive; the next batches refill what is asked
        found: dict[str, VehicleKind] = {}
        missing = []
        for vehicle_id in set(vehicle_ids):
            cached = self._kinds.get(vehicle_id)
            if cached is None or cached[1] < now:
                missing.append(vehicle_id)
            else:
                found[vehicle_id] = cached[0]
        if missing:
            expires = now + self.ttl
            for vehicle_id, vehicle in zip(missing, await self.registry.vehicles_by_id(missing), strict=True):
                kind = (UNREGISTERED, UNREGISTERED) if vehicle is None else (vehicle.powertrain.value, vehicle.make)
                self._kinds[vehicle_id] = (kind, expires)
                found[vehicle_id] = kind
        return found
