"""The Connect service: authorize, re-authorize and revoke connections, each write paired with its event.

Every write is a compare-and-set in one server-side script: the connection record changes only if it still
holds what this process read, and the `connection.*` event is appended in the same atomic step. A writer that
loses the race re-reads and tries again, so concurrent re-auths and a revoke end consistently: the event
stream replays to the stored record, and a revoked connection stays revoked.

Each connection belongs to one application (its config versions and filters decide what is requested and who
may connect) and, when made through Connect, one user. The app's and the user's indexes of active connections
(`Keys.app_connections`, `Keys.user_connections`) and of revoked ones (`Keys.app_revoked_connections`) are written
after the record, on other cluster slots, so they are secondary: readers check each entry against its record.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from redis.asyncio.cluster import RedisCluster

from schemas.access import derive
from schemas.application import DEFAULT_APP_ID
from schemas.connection import Connection, ConnectionStatus
from schemas.grant import ConnectionFilters, grant
from schemas.messages import ConnectionEventMessage, ConnectionEventType
from schemas.permissions import PermissionSet
from schemas.scope import parse_scope, render_scope
from schemas.vehicle import Vehicle
from services.errors import NotFoundError, RevokedError, ServiceError
from services.registry.records import decode_connection, encode_connection
from services.registry.store import Registry, chunked

# KEYS: connection, events stream. ARGV: expected record ('' = must not exist), new record, event JSON.
_COMPARE_AND_SET = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
  if current then return 0 end
elseif current ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[2], '*', 'data', ARGV[3])
return 1
"""
MAX_ATTEMPTS = 50
CLUSTER_CONCURRENCY = 50
"""Scripts in flight at once on a cluster: each holds a connection, and a node allows the client 100."""

# How an update turns the stored connection (and its vehicle) into the new one, at a given time.
_Change = Callable[[Connection, Vehicle, datetime], Connection]


@dataclass(frozen=True, slots=True)
class Authorization:
    """One owner going through Connect: which vehicle, an optional scope override, what they unchecked."""

    vehicle_id: str
    scope: str | None = None
    unchecked: tuple[str, ...] = ()
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class _Requested:
    permissions: PermissionSet
    config_version: int | None
    scope: str | None


class ConnectService:
    """Smartcar Connect's outcomes: authorize, re-authorize, revoke; each change written with its connection event."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._compare_and_set = registry.redis.register_script(_COMPARE_AND_SET)

    async def authorize(
        self,
        vehicle_id: str,
        *,
        scope: str | None = None,
        unchecked: Iterable[str] = (),
        app_id: str = DEFAULT_APP_ID,
        user_id: str | None = None,
    ) -> Connection:
        """Run the Connect flow for a vehicle and store the new connection (`connection.created`)."""
        authorization = Authorization(vehicle_id, scope, tuple(unchecked), user_id)
        (connection,) = await self.authorize_many([authorization], app_id=app_id)
        return connection

    async def connect(
        self,
        app_id: str,
        user_id: str,
        vehicle_id: str,
        *,
        scope: str | None = None,
        unchecked: Iterable[str] = (),
    ) -> Connection:
        """A user grants the app access to a vehicle in Connect: a new connection, or, when the user already has an
        active one for that vehicle with the app, that one re-authorized with the new grant."""
        existing = await self.registry.redis.hget(self.registry.keys.user_connections(app_id, user_id), vehicle_id)
        if existing is not None:
            connection_id = existing.decode() if isinstance(existing, bytes) else existing
            try:
                return await self.reauthorize(connection_id, scope=scope, unchecked=unchecked)
            except (NotFoundError, RevokedError):
                pass  # a stale index entry: connect anew
        return await self.authorize(vehicle_id, scope=scope, unchecked=unchecked, app_id=app_id, user_id=user_id)

    async def authorize_many(
        self, authorizations: Sequence[Authorization], *, app_id: str = DEFAULT_APP_ID
    ) -> list[Connection]:
        """Authorize many vehicles for one app: config, filters and vehicles read once, writes pipelined.

        All or nothing on validation: any refused authorization raises before anything is written.
        """
        filters = await self.registry.filters(app_id)
        everything_scoped = all(a.scope is not None for a in authorizations)
        from_config = None if everything_scoped else await self._from_config(app_id)
        vehicles = await self.registry.vehicles_by_id([a.vehicle_id for a in authorizations])
        now = _now()
        connections = []
        for authorization, vehicle in zip(authorizations, vehicles, strict=True):
            if vehicle is None:
                raise NotFoundError(f"unknown vehicle {authorization.vehicle_id!r}")
            requested = _from_scope(authorization.scope) if authorization.scope is not None else from_config
            assert requested is not None
            permissions = _grant(vehicle, filters, requested, authorization.unchecked)
            connections.append(
                Connection(
                    id=_new_connection_id(),
                    vehicle_id=vehicle.id,
                    permissions=permissions,
                    config_version=requested.config_version,
                    scope=requested.scope,
                    created_at=now,
                    updated_at=now,
                    app_id=app_id,
                    user_id=authorization.user_id,
                )
            )
        for chunk in chunked(connections):
            written = await self._create_all(chunk)
            if not all(written):  # a 64-bit random id collided: astronomically unlikely, never silent
                raise ServiceError("a new connection id was already taken; nothing else was overwritten")
            await self._index(chunk)
        return connections

    async def _index(self, connections: Sequence[Connection]) -> None:
        """Add active connections to their app's and user's indexes; drop revoked ones."""
        keys = self.registry.keys
        async with self.registry.redis.pipeline(transaction=False) as pipe:
            for c in connections:
                by_app = keys.app_connections(c.app_id)
                if c.status is ConnectionStatus.ACTIVE:
                    pipe.zadd(by_app, {c.id: _epoch_ms(c.created_at)})
                    if c.user_id is not None:
                        pipe.hset(keys.user_connections(c.app_id, c.user_id), c.vehicle_id, c.id)
                else:
                    pipe.zrem(by_app, c.id)
                    pipe.zadd(keys.app_revoked_connections(c.app_id), {c.id: _epoch_ms(c.created_at)})
                    if c.user_id is not None:
                        pipe.hdel(keys.user_connections(c.app_id, c.user_id), c.vehicle_id)
            await pipe.execute()

    async def _create_all(self, connections: Sequence[Connection]) -> list[Any]:
        """Write new connections with their events: pipelined, or concurrently on a cluster (whose pipelines
        refuse scripts)."""
        redis = self.registry.redis
        calls = [
            (self._cas_keys(c.id), [b"", encode_connection(c), _event(ConnectionEventType.CREATED, c)])
            for c in connections
        ]
        if isinstance(redis, RedisCluster):
            written: list[Any] = []
            for group in chunked(calls, CLUSTER_CONCURRENCY):
                written += await asyncio.gather(*(self._compare_and_set(keys=k, args=a) for k, a in group))
            return written
        async with redis.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                await self._compare_and_set(keys=keys, args=args, client=pipe)
            return list(await pipe.execute())

    def _cas_keys(self, connection_id: str) -> list[str]:
        """The connection and its shard's event stream: one hash tag, so one slot on a cluster."""
        keys = self.registry.keys
        return [keys.connection(connection_id), keys.shard_of_connection(connection_id).connection_events]

    async def reauthorize(
        self, connection_id: str, *, scope: str | None = None, unchecked: Iterable[str] = ()
    ) -> Connection:
        """Re-run Connect for an active connection: its scopes are replaced (`connection.reauthorized`), from its
        app's current config (or `scope`) and under its app's filters."""
        unchecked = tuple(unchecked)
        app_id = (await self.registry.connection(connection_id)).app_id  # never changes
        requested = _from_scope(scope) if scope is not None else await self._from_config(app_id)
        filters = await self.registry.filters(app_id)

        def reauthorized(current: Connection, vehicle: Vehicle, now: datetime) -> Connection:
            if current.status is ConnectionStatus.REVOKED:
                raise RevokedError(f"connection {connection_id!r} is revoked; revocation is final")
            return replace(
                current,
                permissions=_grant(vehicle, filters, requested, unchecked),
                config_version=requested.config_version,
                scope=requested.scope,
                updated_at=now,
            )

        return await self._update(connection_id, ConnectionEventType.REAUTHORIZED, reauthorized)

    async def revoke(self, connection_id: str) -> Connection:
        """Revoke a connection (`connection.revoked`); final. Revoking twice is an error."""

        def revoked(current: Connection, _vehicle: Vehicle, now: datetime) -> Connection:
            if current.status is ConnectionStatus.REVOKED:
                raise RevokedError(f"connection {connection_id!r} is already revoked")
            return replace(current, status=ConnectionStatus.REVOKED, updated_at=now)

        connection = await self._update(connection_id, ConnectionEventType.REVOKED, revoked)
        await self._index([connection])
        return connection

    async def _update(self, connection_id: str, event: ConnectionEventType, change: _Change) -> Connection:
        keys = self.registry.keys
        redis = self.registry.redis
        for _ in range(MAX_ATTEMPTS):
            record = await redis.get(keys.connection(connection_id))
            if record is None:
                raise NotFoundError(f"unknown connection {connection_id!r}")
            current = decode_connection(connection_id, record)
            vehicle = await self.registry.vehicle(current.vehicle_id)
            updated = change(current, vehicle, _now())
            args = [record, encode_connection(updated), _event(event, updated)]
            if await self._compare_and_set(keys=self._cas_keys(connection_id), args=args):
                return updated
        raise ServiceError(f"connection {connection_id!r} kept changing under {MAX_ATTEMPTS} attempts; try again")

    async def _from_config(self, app_id: str) -> _Requested:
        config = await self.registry.config(app_id=app_id)
        return _Requested(derive(config), config.version, None)


def _from_scope(scope: str) -> _Requested:
    permissions = parse_scope(scope)
    # Stored in canonical form: what was requested, not how it was spelt.
    return _Requested(permissions, None, render_scope(permissions))


def _grant(
    vehicle: Vehicle, filters: ConnectionFilters, requested: _Requested, unchecked: Sequence[str]
) -> PermissionSet:
    filters.check(vehicle.powertrain)
    return grant(requested.permissions, unchecked)


def _event(event_type: ConnectionEventType, connection: Connection) -> bytes:
    return ConnectionEventMessage(
        event_id=uuid.uuid4().hex,
        type=event_type,
        connection_id=connection.id,
        vehicle_id=connection.vehicle_id,
        permissions=connection.permissions,
        config_version=connection.config_version,
        scope=connection.scope,
        occurred_at=connection.updated_at,
        app_id=connection.app_id,
        user_id=connection.user_id,
    ).encode()


def _new_connection_id() -> str:
    return f"c-{secrets.token_hex(8)}"


def _epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _now() -> datetime:
    """Now, to the millisecond: what the connection record keeps."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
