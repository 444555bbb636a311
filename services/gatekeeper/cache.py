"""The gatekeeper's in-process view of the registry: connections and vehicles, fetched per batch in one MGET
(one per slot on a Redis Cluster, sent together).

Entries are dropped when `{prefix}:connection-events` says their connection changed (so a revocation is
honoured as soon as its event is read), and re-read within `ttl` seconds in any case (vehicles have no events): the
whole cache is emptied every `ttl` seconds. Per-entry expiry times cost the hot loop a tuple and a comparison per
lookup; the price of one emptying is a batch or two of fetches, as at start-up.
Unknown ids are cached as None too: a later `connection.created` event invalidates them.

A fetch can overlap an event: the MGET reads the record before a revocation, the event is handled (nothing cached
yet to drop), then the fetch stores what it read, and the revoked connection would pass for active until the TTL
(a load test saw it). So the cache counts the events it handles, and a fetch during which one arrived keeps its
connections for its own batch only (the batch's requests were read before the event), without caching them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from schemas.connection import Connection
from schemas.messages import RequestFields
from schemas.vehicle import Vehicle
from services.keyspace import Keys
from services.redis_client import get_many
from services.registry.records import decode_connection, decode_vehicle
from services.registry.store import Registry


@dataclass(slots=True)
class Lookups:
    """One batch's view of the registry: each id it names, with None for an unknown one."""

    connections: dict[str, Connection | None]
    vehicles: dict[str, Vehicle | None]
    hits: int
    misses: int


_MISSING: Any = object()
"""Not cached (None is: an unknown id)."""


class RegistryCache:
    """The registry's connections and vehicles as a worker sees them: cached, dropped on their events, TTL-bounded."""

    def __init__(self, registry: Registry, ttl: float, max_entries: int = 500_000) -> None:
        self.registry = registry
        self.max_entries = max_entries
        self.keys: Keys = registry.keys
        self.ttl = ttl
        self._connections: dict[str, Connection | None] = {}
        self._vehicles: dict[str, Vehicle | None] = {}
        self._fresh_until = time.monotonic() + ttl
        self._events = 0
        """Connection events handled so far (see the module's text)."""

    async def load(self, requests: Sequence[RequestFields]) -> Lookups:
        """Every request's connection and vehicle, from the cache or one MGET for whatever is missing or stale.

        The answer is a snapshot for this batch: a connection event handled while the MGET is in flight (another
        task) may drop a cache entry, and the batch must still see the record it was checked against.
        """
        now = time.monotonic()
        if now >= self._fresh_until or len(self) > self.max_entries:
            # Stale, or past the memory bound whatever ids arrive (fuzzed ones included): the next batches refill
            # what is live.
            self._connections.clear()
            self._vehicles.clear()
            self._fresh_until = now + self.ttl
        found = Lookups({}, {}, 0, 0)
        missing_connections: set[str] = set()
        missing_vehicles: set[str] = set()
        # The hot loop: bound methods in locals, and hits counted once after it (two lookups a request).
        cached_connection, cached_vehicle = self._connections.get, self._vehicles.get
        connections_found, vehicles_found = found.connections, found.vehicles
        for request in requests:
            connection_id, vehicle_id = request.connection_id, request.vehicle_id
            connection = cached_connection(connection_id, _MISSING)
            if connection is _MISSING:
                missing_connections.add(connection_id)
            else:
                connections_found[connection_id] = connection
            vehicle = cached_vehicle(vehicle_id, _MISSING)
            if vehicle is _MISSING:
                missing_vehicles.add(vehicle_id)
            else:
                vehicles_found[vehicle_id] = vehicle
        found.hits = 2 * len(requests)
        if not missing_connections and not missing_vehicles:
            return found
        connections, vehicles = sorted(missing_connections), sorted(missing_vehicles)
        events_before = self._events
        records = await get_many(
            self.registry.redis,
            [self.keys.connection(c) for c in connections] + [self.keys.vehicle(v) for v in vehicles],
        )
        cache_connections = self._events == events_before
        for connection_id, record in zip(connections, records[: len(connections)], strict=True):
            connection = None if record is None else decode_connection(connection_id, record)
            if cache_connections:
                self._connections[connection_id] = connection
            found.connections[connection_id] = connection
        for vehicle_id, record in zip(vehicles, records[len(connections) :], strict=True):
            vehicle = None if record is None else decode_vehicle(vehicle_id, record)
            self._vehicles[vehicle_id] = vehicle
            found.vehicles[vehicle_id] = vehicle
        # Counted per lookup (two per request), as before: the ids fetched are the misses.
        found.misses = len(connections) + len(vehicles)
        found.hits -= found.misses
        return found

    def forget_connection(self, connection_id: str) -> None:
        self._events += 1
        self._connections.pop(connection_id, None)

    def __len__(self) -> int:
        return len(self._connections) + len(self._vehicles)
