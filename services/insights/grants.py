"""What an app's active connections hold: a count per distinct grant (there are few: a grant is the config's
permissions less what an owner unchecked), so every figure over the connections is a sum over a handful of masks."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from schemas.catalog import get_catalog
from services.redis_client import get_many
from services.registry.records import record_active_grant
from services.registry.store import Registry, chunked


@dataclass(frozen=True, slots=True)
class Grants:
    """Granted permission mask -> how many active connections of the app hold exactly that grant."""

    by_mask: Counter[int] = field(default_factory=Counter)

    @property
    def connections(self) -> int:
        return sum(self.by_mask.values())

    def holding(self, permission: str) -> int:
        """Active connections granted `permission`."""
        bit = 1 << get_catalog().permission_bit(permission)
        return sum(n for mask, n in self.by_mask.items() if mask & bit)

    def lacking_any(self, mask: int) -> int:
        """Active connections without at least one permission of `mask`."""
        return sum(n for granted, n in self.by_mask.items() if mask & ~granted)


async def active_grants(registry: Registry, app_id: str) -> Grants:
    """The grants of the app's active connections: its index of them, each entry checked against its record (a
    revoked connection may linger in the index for a moment)."""
    keys = registry.keys
    ids = await registry.redis.zrange(keys.app_connections(app_id), 0, -1)
    by_mask: Counter[int] = Counter()
    for chunk in chunked(ids):
        names = [c.decode() if isinstance(c, bytes) else str(c) for c in chunk]
        for record in await get_many(registry.redis, [keys.connection(c) for c in names]):
            if record is not None and (mask := record_active_grant(record)) is not None:
                by_mask[mask] += 1
    return Grants(by_mask)
