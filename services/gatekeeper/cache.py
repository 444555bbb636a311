"""The gatekeeper's in-process view of the registry: connections and vehicles, fetched per batch in one MGET.

Entries are dropped when `{prefix}:connection-events` says their connection changed (so a revocation is
honoured as soon as its event is read), and re-read after `ttl` seconds in any case (vehicles have no events).
Unknown ids are cached as None too: a later `connection.created` event invalidates them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from schemas.connection import Connection
from schemas.messages import RequestMessage
from schemas.vehicle import Vehicle
from services.registry.layout import Keys, decode_connection, decode_vehicle
from services.registry.store import Registry


class RegistryCache:
    def __init__(self, registry: Registry, ttl: float, max_entries: int = 500_000) -> None:
        self.registry = registry
        self.max_entries = max_entries
        self.keys: Keys = registry.keys
        self.ttl = ttl
        self._connections: dict[str, tuple[Connection | None, float]] = {}
        self._vehicles: dict[str, tuple[Vehicle | None, float]] = {}

    async def load(self, requests: Iterable[RequestMessage]) -> tuple[int, int]:
        """Make sure every request's connection and vehicle are cached: one MGET for whatever is missing.

        Returns (hits, misses) of this load.
        """
        now = time.monotonic()
        if len(self) > self.max_entries:
            # Bounded memory whatever ids arrive (fuzzed ones included); the next batches refill what is live.
            self._connections.clear()
            self._vehicles.clear()
        connection_ids: set[str] = set()
        vehicle_ids: set[str] = set()
        looked_up = 0
        for request in requests:
            looked_up += 2
            cached = self._connections.get(request.connection_id)
            if cached is None or cached[1] < now:
                connection_ids.add(request.connection_id)
            cached_vehicle = self._vehicles.get(request.vehicle_id)
            if cached_vehicle is None or cached_vehicle[1] < now:
                vehicle_ids.add(request.vehicle_id)
        wanted = len(connection_ids) + len(vehicle_ids)
        if not wanted:
            return looked_up, 0
        connections, vehicles = sorted(connection_ids), sorted(vehicle_ids)
        records = await self.registry.redis.mget(
            [self.keys.connection(c) for c in connections] + [self.keys.vehicle(v) for v in vehicles]
        )
        expires = now + self.ttl
        for connection_id, record in zip(connections, records[: len(connections)], strict=True):
            value = None if record is None else decode_connection(connection_id, record)
            self._connections[connection_id] = (value, expires)
        for vehicle_id, record in zip(vehicles, records[len(connections) :], strict=True):
            self._vehicles[vehicle_id] = (None if record is None else decode_vehicle(vehicle_id, record), expires)
        return looked_up - wanted, wanted

    def connection(self, connection_id: str) -> Connection | None:
        cached = self._connections.get(connection_id)
        return None if cached is None else cached[0]

    def vehicle(self, vehicle_id: str) -> Vehicle | None:
        cached = self._vehicles.get(vehicle_id)
        return None if cached is None else cached[0]

    def forget_connection(self, connection_id: str) -> None:
        self._connections.pop(connection_id, None)

    def __len__(self) -> int:
        return len(self._connections) + len(self._vehicles)
