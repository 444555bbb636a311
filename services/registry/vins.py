"""The VIN index, `P:vins`: a hash VIN -> the id of the vehicle registered with it, so that finding a vehicle by VIN
(`GET /v2.0/compatibility`, `Registry.vehicle_by_vin`) is one HMGET for an unknown VIN, whatever the fleet's size.

- The registry writes a vehicle's entry with the vehicle: in the same pipeline when it may overwrite one
  (`add_vehicles`, `add_vehicle(replace=True)`); right after the SET NX that stored it otherwise (a refused add
  must not point the VIN at the vehicle already stored under that id).
- An entry may be stale (its vehicle since removed, or given another VIN): `Registry.vehicle_by_vin` answers only
  with a record carrying the VIN asked, so a stale entry answers nothing. Writers still drop the entries they make
  stale (a changed VIN, a removed vehicle), each only while it names that vehicle: another may have taken the VIN.
- A VIN names one vehicle: when registered vehicles share one (the test builders give them all the same), the
  index answers the one written last; removing it, or changing its VIN, leaves the VIN unanswered until another of
  them is written again.
- Data written before the index existed has vehicles and no index. The field `complete` says the index holds every
  registered vehicle: a lookup reads it with the VIN (same HMGET, nothing more), and without it first builds the
  index from every vehicle record (SCAN, then one MGET and one HSET per chunk) and sets it last, so a build cut
  short is redone by the next lookup. A new registry builds its (empty) index once, at its first lookup. Writers
  write their entries meanwhile as usual; a build racing a VIN change may leave a stale entry, harmless as said.
  One build at a time per process; processes building at once write the same entries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from redis.typing import FieldT

from services.keyspace import Keys
from services.redis_client import Client, get_many
from services.registry.records import record_vin

COMPLETE = "complete"
"""The field marking the index complete: never a VIN (a VIN has 17 characters)."""
CHUNK = 1000

# Drop each (VIN, vehicle id) entry only while it still names that vehicle. One key: a single call (not a
# pipeline, which a cluster's refuses for scripts) works on a cluster too.
_FORGET = """
local dropped = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    dropped = dropped + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return dropped
"""


class VinIndex:
    """Reads, builds and prunes the VIN index; the registry writes its entries with the vehicles."""

    def __init__(self, redis: Client, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._forget = redis.register_script(_FORGET)
        self._building = asyncio.Lock()  # concurrent first lookups wait for one build

    async def vehicle_id(self, vin: str) -> str | None:
        """The id the index gives for the VIN, the index built first if incomplete (not checked against the
        vehicle's record: the caller's part)."""
        found, complete = await self.redis.hmget(self.keys.vins, [vin, COMPLETE])
        if complete is None:
            await self.build()
            found = await self.redis.hget(self.keys.vins, vin)
        return None if found is None else _text(found)

    async def build(self) -> int:
        """Index every registered vehicle, then mark the index complete; how many VINs it indexed (none when the
        index was complete already)."""
        async with self._building:
            if await self.redis.hexists(self.keys.vins, COMPLETE):
                return 0
            skip = len(self.keys.vehicle(""))
            found = self.redis.scan_iter(match=self.keys.vehicle_pattern, count=CHUNK)
            vehicle_ids = [_text(key)[skip:] async for key in found]
            indexed = 0
            for start in range(0, len(vehicle_ids), CHUNK):
                indexed += await self._index(vehicle_ids[start : start + CHUNK])
            await self.redis.hset(self.keys.vins, COMPLETE, "1")
            return indexed

    async def _index(self, vehicle_ids: list[str]) -> int:
        """HSET the entries of these vehicles (those still registered) from their records; how many VINs."""
        records = await get_many(self.redis, [self.keys.vehicle(v) for v in vehicle_ids])
        entries: dict[FieldT, str] = {record_vin(r): v for v, r in zip(vehicle_ids, records, strict=True) if r}
        if entries:
            await self.redis.hset(self.keys.vins, mapping=entries)
        return len(entries)

    async def forget(self, entries: Iterable[tuple[str, str]]) -> int:
        """Drop each (VIN, vehicle id) entry that still names that vehicle; how many were dropped."""
        args = [part for entry in entries for part in entry]
        dropped = 0
        for start in range(0, len(args), 2 * CHUNK):
            dropped += int(await self._forget(keys=[self.keys.vins], args=args[start : start + 2 * CHUNK]))
        return dropped


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
