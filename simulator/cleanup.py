"""What a load test (or the demo) writes into the registry, kept apart from the user's data, and its removal.

A run is an application of its own (`LOADTEST_APP_ID`): its Vehicle Access config and Connection Filters are that
app's, its owners connect to it, and its fleet's ids start with `LOADTEST_VEHICLE_PREFIX` (`fleetgate simulate
fleet` uses `sim-`), so a run never changes another app's config, filters or connections, nor anyone's vehicles.

`remove_run` deletes what a run created: its vehicles (with their VIN index entries) and their simulated state, its
app's connections and their indexes (active and revoked), its app with its configs and filters, and the dedupe
records of its request ids. The streams' entries stay: other consumers may be reading them (they go with the
streams' trimming). Keys are found from indexes where there is one; SCAN (on every node of a cluster) only for what
nothing indexes: connections revoked before the app's revoked index existed, when the caller does not know them,
dedupe records, and leftover vehicles. Deletes are pipelined in chunks, one key per DEL, so the same code runs on
one Redis and on a cluster whose keys sit on different slots.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from schemas.application import DEFAULT_APP_ID, AppMode
from schemas.connection import Connection
from services import dedupe
from services.errors import NotFoundError, ServiceError
from services.redis_client import get_many
from services.registry import AppStore, Registry
from services.registry.records import decode_connection
from services.registry.store import chunked

LOADTEST_APP_ID = "fleetgate-loadtest"
LOADTEST_APP_NAME = "fleetgate load test"
LOADTEST_VEHICLE_PREFIX = "lt-"


@dataclass(frozen=True, slots=True)
class Removed:
    """What `remove_run` deleted."""

    vehicles: int
    connections: int
    keys: int


async def ensure_app(registry: Registry, app_id: str = LOADTEST_APP_ID, name: str = LOADTEST_APP_NAME) -> str:
    """The run's application: created the first time, reused (as it is) after that."""
    if app_id == DEFAULT_APP_ID:
        raise ValueError("a load test never runs as the default app: it would change the user's config")
    apps = AppStore(registry.redis, registry.keys)
    try:
        return (await apps.get(app_id)).id
    except NotFoundError:
        pass
    try:
        await apps.create(name, [], AppMode.SIMULATED, app_id=app_id)
    except ServiceError:  # created meanwhile by another run: reuse it
        await apps.get(app_id)
    return app_id


async def leftover_vehicle_ids(registry: Registry, id_prefix: str = LOADTEST_VEHICLE_PREFIX) -> list[str]:
    """The registered vehicles whose ids start with `id_prefix` (a SCAN: no index lists vehicles by prefix)."""
    skip = len(registry.keys.vehicle(""))
    found = registry.redis.scan_iter(match=f"{registry.keys.vehicle(id_prefix)}*", count=1000)
    return sorted([key[skip:].decode() async for key in found])


async def remove_run(
    registry: Registry,
    app_id: str,
    vehicle_ids: Sequence[str],
    connection_ids: Iterable[str] | None = None,
    *,
    run_id: str | None = None,
    unreadable_ids: Sequence[str] = (),
    extra_keys: Sequence[str] = (),
) -> Removed:
    """Delete a run's vehicles (with their simulated state), its app's connections (those the app's index lists,
    `connection_ids`, or, when None, every connection of the app found by SCAN) and their indexes, the app and its
    configs and filters; with `run_id`, the dedupe records of its request ids (`{run_id}-...`) and of the unreadable
    requests it sent (`unreadable_ids`: what the gatekeeper called them); and `extra_keys`.
    Never the streams' entries. A connection of another app is never deleted, whatever `connection_ids` says."""
    if app_id == DEFAULT_APP_ID:
        raise ValueError("refusing to remove the default app's data")
    redis, keys = registry.redis, registry.keys
    indexes = [keys.app_connections(app_id), keys.app_revoked_connections(app_id)]
    members = [m for index in indexes for m in await redis.zrange(index, 0, -1)]
    indexed = {_text(c) for c in members if isinstance(c, bytes | str)}
    candidates = indexed | (set(connection_ids) if connection_ids is not None else await _scan_connections(registry))
    connections = [c for c in await _connections(registry, sorted(candidates)) if c.app_id == app_id]
    doomed = [keys.connection(c.id) for c in connections]
    for user_id in sorted({c.user_id for c in connections if c.user_id is not None}):
        doomed += [keys.user_connections(app_id, user_id), keys.user_tokens(app_id, user_id)]
    doomed += indexes
    doomed += [keys.shard_of_vehicle(v).vehicle_state_prefix + v for v in vehicle_ids]
    doomed += await _app_keys(registry, app_id)
    for shard in keys.all_shards:
        # `unreadable:<entry id>`, or `unreadable:<tag>:<entry id>` on a shard
        unreadable = [i for i in unreadable_ids if i.startswith(shard.unreadable_prefix)]
        if run_id is not None or unreadable:
            matching = None if run_id is None else f"{run_id}-*"
            await dedupe.forget(redis, shard, matching=matching, ids=unreadable)
        if run_id is not None:
            match = f"{shard.response_dedupe_prefix}{run_id}-*"
            doomed += [_text(k) async for k in redis.scan_iter(match=match, count=1000)]
    doomed += extra_keys
    deleted = await registry.remove_vehicles(vehicle_ids)  # with their VIN index entries
    deleted += await _delete(registry, doomed)
    deleted += await AppStore(redis, keys).delete(app_id)
    return Removed(vehicles=len(vehicle_ids), connections=len(connections), keys=deleted)


async def remove_leftovers(
    registry: Registry, app_id: str = LOADTEST_APP_ID, id_prefix: str = LOADTEST_VEHICLE_PREFIX
) -> Removed:
    """What earlier runs left (those without cleanup): the app's connections, revoked ones included, the vehicles
    whose ids start with `id_prefix` and their state, the app and its configs and filters. Their dedupe records
    expire on their own (after the dedupe window); the vehicles' clock stays (a vehicles service may share it)."""
    return await remove_run(registry, app_id, await leftover_vehicle_ids(registry, id_prefix))


async def _app_keys(registry: Registry, app_id: str) -> list[str]:
    """The app's Vehicle Access versions, current, publish times and filters (its record is AppStore's to delete)."""
    redis, keys = registry.redis, registry.keys
    access = keys.access(app_id)
    last = await redis.get(access.version)
    found = [access.config(v) for v in range(1, int(last or 0) + 1)]
    return [*found, access.current, access.version, access.published, access.filters]


async def _scan_connections(registry: Registry) -> set[str]:
    """Every stored connection id (revoked ones included, which no index keeps)."""
    found: set[str] = set()
    for pattern in registry.keys.connection_patterns():
        async for key in registry.redis.scan_iter(match=pattern, count=1000):
            found.add(_text(key).rpartition(":conn:")[2])
    return found


async def _connections(registry: Registry, connection_ids: Sequence[str]) -> list[Connection]:
    found = []
    for chunk in chunked(connection_ids):
        records = await get_many(registry.redis, [registry.keys.connection(c) for c in chunk])
        found += [decode_connection(c, r) for c, r in zip(chunk, records, strict=True) if r is not None]
    return found


async def _delete(registry: Registry, doomed: Sequence[str]) -> int:
    """DEL each key (one per command: keys on different cluster slots), pipelined in chunks; how many existed."""
    deleted = 0
    for chunk in chunked(dict.fromkeys(doomed)):
        async with registry.redis.pipeline(transaction=False) as pipe:
            for key in chunk:
                pipe.delete(key)
            deleted += sum(int(n) for n in await pipe.execute())
    return deleted


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
