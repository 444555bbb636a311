"""Searching an app's connections for the dashboard: what a query asks (`ConnectionQuery`) and `search()`.

Active connections come from the app's index (`Keys.app_connections`), revoked ones from its revoked index
(`Keys.app_revoked_connections`); both are scored by creation time, so the listing is newest first. Without a
filter a page reads only its own records. With one, every record of the chosen status is read (MGETs of 1,000)
and filtered here, and the vehicles' records too when the filter looks at them (the text, the powertrain): one
pass over 10,000 connections takes a fraction of a second (README, "The dashboard"). The indexes are secondary
(services/registry/connect.py): each entry is checked against its record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

from schemas.catalog import get_catalog
from schemas.connection import Connection
from schemas.powertrain import Powertrain
from services.redis_client import get_many
from services.registry.records import VehicleSummary, decode_connection, vehicle_summary
from services.registry.store import Registry, chunked

PAGE_SIZE = 50
MAX_TEXT = 128


class StatusFilter(StrEnum):
    ALL = "all"
    ACTIVE = "active"
    REVOKED = "revoked"


class QueryError(ValueError):
    """A search parameter that is not one of the page's choices (a hand-made URL): the message says which."""


@dataclass(frozen=True, slots=True)
class ConnectionQuery:
    """What the list is narrowed to: a text (in the ids, the VIN, the make and model), a status, a powertrain, a
    permission the connection holds; and which page of the result."""

    text: str = ""
    status: StatusFilter = StatusFilter.ALL
    powertrain: Powertrain | None = None
    permission: str | None = None
    page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> ConnectionQuery:
        """The query of a listing URL's parameters (empty ones mean "any"); QueryError names a wrong one."""
        text = params.get("q", "").strip()
        if len(text) > MAX_TEXT:
            raise QueryError(f"the search text is longer than {MAX_TEXT} characters")
        status, powertrain, permission = (params.get(n) or None for n in ("status", "powertrain", "permission"))
        if status is not None and status not in set(StatusFilter):
            raise QueryError(f"unknown status {status!r}: choose all, active or revoked")
        if powertrain is not None and powertrain not in set(Powertrain):
            raise QueryError(f"unknown powertrain {powertrain!r}")
        if permission is not None and permission not in get_catalog().permission_names:
            raise QueryError(f"unknown permission {permission!r}")
        page = params.get("page") or "1"
        if not page.isdigit() or not 0 < int(page) < 1_000_000:
            raise QueryError(f"page {page!r} is not a page number")
        return cls(
            text=text,
            status=StatusFilter(status or StatusFilter.ALL),
            powertrain=None if powertrain is None else Powertrain(powertrain),
            permission=permission,
            page=int(page),
        )

    @property
    def needs_vehicles(self) -> bool:
        """Whether filtering reads the vehicles (the text may be a VIN or a make; the powertrain is theirs)."""
        return bool(self.text) or self.powertrain is not None

    @property
    def filtered(self) -> bool:
        """Whether the records must be read to know which connections match (the status alone is the index's)."""
        return self.needs_vehicles or self.permission is not None

    def admits(self, connection: Connection, vehicle: VehicleSummary | None) -> bool:
        if self.status is not StatusFilter.ALL and connection.status.value != self.status.value:
            return False
        if self.permission is not None and self.permission not in connection.permissions:
            return False
        if self.powertrain is not None and (vehicle is None or vehicle.powertrain is not self.powertrain):
            return False
        return not self.text or self.text.lower() in _searchable(connection, vehicle)

    def params(self, **changes: str | int) -> dict[str, str | int]:
        """The URL parameters of this query (empty ones left out), with `changes` (another page, say)."""
        current: dict[str, str | int] = {
            "q": self.text,
            "status": "" if self.status is StatusFilter.ALL else self.status.value,
            "powertrain": self.powertrain.value if self.powertrain else "",
            "permission": self.permission or "",
            "page": self.page if self.page > 1 else "",
        }
        return {k: v for k, v in (current | changes).items() if v != ""}


def _searchable(connection: Connection, vehicle: VehicleSummary | None) -> str:
    found = [connection.id, connection.vehicle_id, connection.user_id or ""]
    if vehicle is not None:
        found += [vehicle.vin, vehicle.make, vehicle.model]
    return "\n".join(found).lower()


@dataclass(frozen=True, slots=True)
class ConnectionRow:
    """A listed connection with its vehicle (None when the vehicle is no longer registered)."""

    connection: Connection
    vehicle: VehicleSummary | None


@dataclass(frozen=True, slots=True)
class SearchResult:
    rows: list[ConnectionRow]
    total: int
    page: int
    pages: int


async def search(registry: Registry, app_id: str, query: ConnectionQuery) -> SearchResult:
    """One page (PAGE_SIZE rows) of the app's connections that `query` admits, newest first, and how many match."""
    ids = await _indexed_ids(registry, app_id, query.status)
    if query.filtered:
        rows = await _matching(registry, app_id, ids, query)
        total, start = len(rows), (query.page - 1) * PAGE_SIZE
        shown = rows[start : start + PAGE_SIZE]
        if not query.needs_vehicles:
            shown = await _with_vehicles(registry, [r.connection for r in shown])
    else:
        total, start = len(ids), (query.page - 1) * PAGE_SIZE
        found = await _connections(registry, app_id, ids[start : start + PAGE_SIZE])
        shown = [r for r in await _with_vehicles(registry, found) if query.admits(r.connection, r.vehicle)]
    return SearchResult(shown, total, query.page, max(1, -(-total // PAGE_SIZE)))


async def _indexed_ids(registry: Registry, app_id: str, status: StatusFilter) -> list[str]:
    """The ids the app's indexes list for `status`, newest first (an id in both, mid-revocation, once)."""
    keys = registry.keys
    indexes = {
        StatusFilter.ACTIVE: [keys.app_connections(app_id)],
        StatusFilter.REVOKED: [keys.app_revoked_connections(app_id)],
        StatusFilter.ALL: [keys.app_connections(app_id), keys.app_revoked_connections(app_id)],
    }[status]
    scored: dict[str, float] = {}
    for index in indexes:
        entries = cast("list[tuple[bytes, float]]", await registry.redis.zrange(index, 0, -1, withscores=True))
        scored.update((member.decode(), score) for member, score in entries)
    return sorted(scored, key=lambda i: (scored[i], i), reverse=True)


async def _connections(registry: Registry, app_id: str, ids: Sequence[str]) -> list[Connection]:
    """The records of `ids` that exist and are the app's (MGETs of a chunk each), in the order of `ids`."""
    found: list[Connection] = []
    for chunk in chunked(ids):
        records = await get_many(registry.redis, [registry.keys.connection(c) for c in chunk])
        for connection_id, record in zip(chunk, records, strict=True):
            if record is not None and (connection := decode_connection(connection_id, record)).app_id == app_id:
                found.append(connection)
    return found


async def _vehicles(registry: Registry, vehicle_ids: Sequence[str]) -> dict[str, VehicleSummary]:
    found: dict[str, VehicleSummary] = {}
    for chunk in chunked(dict.fromkeys(vehicle_ids)):
        records = await get_many(registry.redis, [registry.keys.vehicle(v) for v in chunk])
        found.update((v, vehicle_summary(r)) for v, r in zip(chunk, records, strict=True) if r is not None)
    return found


async def _with_vehicles(registry: Registry, connections: Sequence[Connection]) -> list[ConnectionRow]:
    vehicles = await _vehicles(registry, [c.vehicle_id for c in connections])
    return [ConnectionRow(c, vehicles.get(c.vehicle_id)) for c in connections]


async def _matching(registry: Registry, app_id: str, ids: Sequence[str], query: ConnectionQuery) -> list[ConnectionRow]:
    """Every connection of `ids` that the query admits: the connection's own fields first, the vehicles' records
    read only for those left (and only when the query looks at them)."""
    connections = await _connections(registry, app_id, ids)
    if not query.needs_vehicles:
        return [ConnectionRow(c, None) for c in connections if query.admits(c, None)]
    status_and_permission = ConnectionQuery(status=query.status, permission=query.permission)
    candidates = [c for c in connections if status_and_permission.admits(c, None)]
    return [r for r in await _with_vehicles(registry, candidates) if query.admits(r.connection, r.vehicle)]
