"""Searching an app's connections for the dashboard: what a query asks (`ConnectionQuery`) and `search()`.

Active connections come from the app's index (`Keys.app_connections`), revoked ones from its revoked index
(`Keys.app_revoked_connections`); both are scored by creation time, so the listing is newest first. Without a
filter a page reads only its own records. With one, every record of the chosen status is read (MGETs of 1,000)
and filtered on its fields as stored (`records.connection_listing`: no `Connection` is built but for the page's),
then on its vehicle's record when the filter looks at vehicles (the text, the powertrain), for those left: 10,000
connections are searched in a few hundred milliseconds at most (`python -m bench.dashboard_connections`). The
indexes are secondary (services/registry/connect.py): each entry is checked against its record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import cast

from schemas.catalog import get_catalog
from schemas.connection import Connection
from schemas.powertrain import Powertrain
from services.redis_client import get_many
from services.registry.records import (
    ConnectionListing,
    VehicleSummary,
    connection_listing,
    decode_connection,
    vehicle_summary,
)
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
    _permission_mask: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.permission is not None:  # looked up once, not per connection
            object.__setattr__(self, "_permission_mask", 1 << get_catalog().permission_bit(self.permission))

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

    def admits(self, found: Found, *, with_vehicle: bool = True) -> bool:
        """Whether the query takes this connection; without `with_vehicle`, only by what its record says (the
        vehicle's part left for later)."""
        listing = found.listing
        if self.status is not StatusFilter.ALL and listing.active != (self.status is StatusFilter.ACTIVE):
            return False
        if self._permission_mask and not listing.granted & self._permission_mask:
            return False
        if not with_vehicle:
            return True
        vehicle = found.vehicle
        if self.powertrain is not None and (vehicle is None or vehicle.powertrain is not self.powertrain):
            return False
        return not self.text or self.text.lower() in found.searchable()

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


@dataclass(slots=True)
class Found:
    """A connection of the app as read for a search: its record, what the record says, and its vehicle (read only
    when needed; None when not read yet or no longer registered)."""

    connection_id: str
    record: bytes
    listing: ConnectionListing
    vehicle: VehicleSummary | None = None

    def searchable(self) -> str:
        words = [self.connection_id, self.listing.vehicle_id, self.listing.user_id or ""]
        if self.vehicle is not None:
            words += [self.vehicle.vin, self.vehicle.make, self.vehicle.model]
        return "\n".join(words).lower()


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
    start = (query.page - 1) * PAGE_SIZE
    if query.filtered:
        found = [f for f in await _found(registry, app_id, ids) if query.admits(f, with_vehicle=False)]
        if query.needs_vehicles:
            await _read_vehicles(registry, found)
            found = [f for f in found if query.admits(f)]
        total, shown = len(found), found[start : start + PAGE_SIZE]
    else:  # the index says which ones: read only the page's (an entry mid-revocation may be off by one)
        total = len(ids)
        shown = [f for f in await _found(registry, app_id, ids[start : start + PAGE_SIZE]) if query.admits(f)]
    if not query.needs_vehicles:
        await _read_vehicles(registry, shown)
    rows = [ConnectionRow(decode_connection(f.connection_id, f.record), f.vehicle) for f in shown]
    return SearchResult(rows, total, query.page, max(1, -(-total // PAGE_SIZE)))


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


async def _found(registry: Registry, app_id: str, ids: Sequence[str]) -> list[Found]:
    """The records of `ids` that exist and are the app's (MGETs of a chunk each), in the order of `ids`."""
    found: list[Found] = []
    for chunk in chunked(ids):
        records = await get_many(registry.redis, [registry.keys.connection(c) for c in chunk])
        for connection_id, record in zip(chunk, records, strict=True):
            if record is not None and (listing := connection_listing(connection_id, record)).app_id == app_id:
                found.append(Found(connection_id, record, listing))
    return found


async def _read_vehicles(registry: Registry, found: Sequence[Found]) -> None:
    """Fill in each one's vehicle (MGETs of a chunk each; a vehicle shared by several is read once)."""
    vehicle_ids = list(dict.fromkeys(f.listing.vehicle_id for f in found))
    vehicles: dict[str, VehicleSummary] = {}
    for chunk in chunked(vehicle_ids):
        records = await get_many(registry.redis, [registry.keys.vehicle(v) for v in chunk])
        vehicles.update((v, vehicle_summary(r)) for v, r in zip(chunk, records, strict=True) if r is not None)
    for f in found:
        f.vehicle = vehicles.get(f.listing.vehicle_id)
