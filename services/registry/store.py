"""The registry: vehicles, Vehicle Access config versions, Connection Filters and connections, in Redis.

Reads here are what the gatekeeper uses; writes of connections go through `ConnectService` (connect.py),
which pairs each with its event. Key names live in `services/keyspace.py`, encodings in `records.py`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import TypeVar

from schemas.access import VehicleAccessConfig
from schemas.application import DEFAULT_APP_ID
from schemas.connection import Connection, ConnectionStatus
from schemas.grant import ConnectionFilters
from schemas.vehicle import Vehicle
from services.errors import NotFoundError, ServiceError
from services.keyspace import Keys
from services.redis_client import Client, get_many
from services.registry.records import decode_connection, decode_vehicle, encode_vehicle, record_vin
from services.registry.vins import VinIndex

PIPELINE_CHUNK = 1000
T = TypeVar("T")


def chunked(items: Iterable[T], size: int = PIPELINE_CHUNK) -> Iterator[list[T]]:
    """Consecutive lists of at most `size` items (itertools.batched arrives in Python 3.12)."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


# Allocating the version, storing the config, noting when, and making it current happen together or not at all.
_PUBLISH = """
local version = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[3] .. version, ARGV[1])
redis.call('HSET', KEYS[4], version, ARGV[2])
redis.call('SET', KEYS[2], version)
return version
"""


@dataclass(frozen=True, slots=True)
class PublishedVersion:
    """One published Vehicle Access version of an app: its number and when it was published (None for a version
    published before the registry noted the time)."""

    version: int
    published_at: datetime | None
    current: bool


class Registry:
    """Vehicles, Vehicle Access config versions, Connection Filters and connections, as stored in Redis."""

    def __init__(self, redis: Client, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._publish = redis.register_script(_PUBLISH)
        self.vins = VinIndex(redis, keys)

    # --- vehicles

    async def add_vehicle(self, vehicle: Vehicle, *, replace: bool = False) -> None:
        """Register a vehicle; an existing id is an error unless `replace`. Indexed by VIN (vins.py)."""
        if replace:
            await self._write([vehicle])
            return
        if not await self.redis.set(self.keys.vehicle(vehicle.id), encode_vehicle(vehicle), nx=True):
            raise ServiceError(f"vehicle {vehicle.id!r} already exists (use replace to overwrite it)")
        # Only once stored: a refused add must not point the VIN at the vehicle already under that id.
        await self.redis.hset(self.keys.vins, vehicle.vin, vehicle.id)

    async def add_vehicles(self, vehicles: Iterable[Vehicle]) -> int:
        """Register (or overwrite) many vehicles, pipelined; returns how many."""
        count = 0
        for chunk in chunked(vehicles):
            await self._write(chunk)
            count += len(chunk)
        return count

    async def _write(self, vehicles: Sequence[Vehicle]) -> None:
        """SET the vehicles with their VIN entries, one pipeline; then drop the entries of the VINs they replaced."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for vehicle in vehicles:
                pipe.set(self.keys.vehicle(vehicle.id), encode_vehicle(vehicle), get=True)  # GET: the VIN it replaces
                pipe.hset(self.keys.vins, vehicle.vin, vehicle.id)
            replies = await pipe.execute()
        stale = []
        for vehicle, old in zip(vehicles, replies[::2], strict=True):
            if old is not None and (vin := record_vin(old)) != vehicle.vin:
                stale.append((vin, vehicle.id))
        await self.vins.forget(stale)

    async def remove_vehicles(self, vehicle_ids: Sequence[str]) -> int:
        """Delete vehicles and their VIN entries (not their simulated state); returns how many existed."""
        removed = 0
        for chunk in chunked(vehicle_ids):
            records = await get_many(self.redis, [self.keys.vehicle(v) for v in chunk])
            async with self.redis.pipeline(transaction=False) as pipe:
                for vehicle_id in chunk:  # one key per DEL: a cluster's keys sit on different slots
                    pipe.delete(self.keys.vehicle(vehicle_id))
                removed += sum(int(n) for n in await pipe.execute())
            await self.vins.forget((record_vin(r), v) for v, r in zip(chunk, records, strict=True) if r is not None)
        return removed

    async def vehicle_by_vin(self, vin: str) -> Vehicle | None:
        """The vehicle registered with this VIN, None if none is: one HMGET for an unknown VIN, a GET more for a
        known one, whose record must carry the VIN (an index entry may be stale: vins.py)."""
        vehicle_id = await self.vins.vehicle_id(vin)
        record = None if vehicle_id is None else await self.redis.get(self.keys.vehicle(vehicle_id))
        if vehicle_id is None or record is None:
            return None
        vehicle = decode_vehicle(vehicle_id, record)
        return vehicle if vehicle.vin == vin else None

    async def vehicle(self, vehicle_id: str) -> Vehicle:
        record = await self.redis.get(self.keys.vehicle(vehicle_id))
        if record is None:
            raise NotFoundError(f"unknown vehicle {vehicle_id!r}")
        return decode_vehicle(vehicle_id, record)

    async def vehicles_by_id(self, vehicle_ids: Sequence[str]) -> list[Vehicle | None]:
        """Many vehicles in one round trip per server (MGET); None where unknown."""
        records = await get_many(self.redis, [self.keys.vehicle(v) for v in vehicle_ids])
        return [None if r is None else decode_vehicle(v, r) for v, r in zip(vehicle_ids, records, strict=True)]

    async def vehicle_ids(self, limit: int | None = None) -> list[str]:
        """Registered vehicle ids, sorted (a SCAN: meant for listings, not hot paths)."""
        skip = len(self.keys.vehicle(""))
        found: list[str] = []
        async for key in self.redis.scan_iter(match=self.keys.vehicle_pattern, count=1000):
            found.append(key[skip:].decode())
        found.sort()
        return found if limit is None else found[:limit]

    # --- Vehicle Access configs (each application has its own versions)

    async def publish_config(self, config: VehicleAccessConfig, app_id: str = DEFAULT_APP_ID) -> VehicleAccessConfig:
        """Store the config as the app's new version and make it current; returns it with its version."""
        access = self.keys.access(app_id)
        keys = [access.version, access.current, access.config_prefix, access.published]
        args: list[str | int] = [config.model_dump_json(exclude={"version"}), round(time.time() * 1000)]
        version = int(await self._publish(keys=keys, args=args))
        return config.model_copy(update={"version": version})

    async def config_versions(self, app_id: str = DEFAULT_APP_ID) -> list[PublishedVersion]:
        """Every version the app published, newest first (versions are never deleted: 1 to the last handed out)."""
        access = self.keys.access(app_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(access.version)
            pipe.get(access.current)
            pipe.hgetall(access.published)
            last, current, published = await pipe.execute()
        times = {int(v): datetime.fromtimestamp(int(ms) / 1000, tz=UTC) for v, ms in published.items()}
        current_version = None if current is None else int(current)
        return [PublishedVersion(v, times.get(v), v == current_version) for v in range(int(last or 0), 0, -1)]

    async def config(self, version: int | None = None, app_id: str = DEFAULT_APP_ID) -> VehicleAccessConfig:
        """One of the app's published configs: the current one by default."""
        access = self.keys.access(app_id)
        if version is None:
            current = await self.redis.get(access.current)
            if current is None:
                raise NotFoundError(
                    f"no Vehicle Access config is published yet{_for_app(app_id)} (fleetgate access publish FILE)"
                )
            version = int(current)
        record = await self.redis.get(access.config(version))
        if record is None:
            raise NotFoundError(f"no Vehicle Access config version {version}{_for_app(app_id)}")
        return VehicleAccessConfig.model_validate_json(record).model_copy(update={"version": version})

    # --- Connection Filters (each application has its own)

    async def set_filters(self, filters: ConnectionFilters, app_id: str = DEFAULT_APP_ID) -> None:
        await self.redis.set(self.keys.access(app_id).filters, filters.model_dump_json())

    async def filters(self, app_id: str = DEFAULT_APP_ID) -> ConnectionFilters:
        """The app's Connection Filters; none set means no filter."""
        record = await self.redis.get(self.keys.access(app_id).filters)
        return ConnectionFilters() if record is None else ConnectionFilters.model_validate_json(record)

    # --- connections

    async def connection(self, connection_id: str) -> Connection:
        record = await self.redis.get(self.keys.connection(connection_id))
        if record is None:
            raise NotFoundError(f"unknown connection {connection_id!r}")
        return decode_connection(connection_id, record)

    async def user_connections(self, app_id: str, user_id: str) -> list[Connection]:
        """The user's active connections with the app, by vehicle id order (the index is checked against each
        record: an entry whose connection was revoked in between is skipped)."""
        index = await self.redis.hgetall(self.keys.user_connections(app_id, user_id))
        pairs = sorted((_text(k), _text(v)) for k, v in index.items())
        records = await get_many(self.redis, [self.keys.connection(c) for _, c in pairs])
        found = []
        for (vehicle_id, connection_id), record in zip(pairs, records, strict=True):
            if record is None:
                continue
            connection = decode_connection(connection_id, record)
            if connection.status is ConnectionStatus.ACTIVE and connection.vehicle_id == vehicle_id:
                found.append(connection)
        return found

    async def lookup(self, connection_id: str, vehicle_id: str) -> tuple[Connection | None, Vehicle | None]:
        """A request's connection and vehicle, in one round trip per server; None for what is not registered."""
        conn, vehicle = await get_many(self.redis, [self.keys.connection(connection_id), self.keys.vehicle(vehicle_id)])
        return (
            None if conn is None else decode_connection(connection_id, conn),
            None if vehicle is None else decode_vehicle(vehicle_id, vehicle),
        )


def _for_app(app_id: str) -> str:
    return "" if app_id == DEFAULT_APP_ID else f" for app {app_id!r}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
