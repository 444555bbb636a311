"""The powertrain and make of vehicles, as the usage consumer splits VEHICLE_NOT_CAPABLE counts by them.

Read from the registry's records (one MGET for a batch's misses) and kept `ttl` seconds, as the gatekeeper's
RegistryCache keeps vehicles: a vehicle's make and powertrain practically never change, and only not-capable
decisions ask.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from services.insights.counts import UNREGISTERED, VehicleKind
from services.redis_client import get_many
from services.registry.records import record_signature
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
            records = await get_many(self.registry.redis, [self.registry.keys.vehicle(v) for v in missing])
            for vehicle_id, record in zip(missing, records, strict=True):
                kind = _kind(record)
                self._kinds[vehicle_id] = (kind, expires)
                found[vehicle_id] = kind
        return found


def _kind(record: bytes | None) -> VehicleKind:
    """A vehicle record's powertrain and make, read without validating the rest: a record this version cannot
    build (a capability the catalog dropped) still has them; one that has not counts as unregistered."""
    if record is None:
        return UNREGISTERED, UNREGISTERED
    try:
        make, powertrain, _adds, _lacks = record_signature(record)
    except (ValueError, KeyError, TypeError):
        return UNREGISTERED, UNREGISTERED
    return str(powertrain), str(make)
