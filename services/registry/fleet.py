"""The registered fleet in groups of vehicles alike: same make, powertrain and capability set.

What-if (services/insights/whatif.py) and the dashboard's Connection Filters page read it, once per answer: the
vehicle keys by SCAN (as `Registry.vehicle_ids`; not the VIN index, which answers one vehicle for VINs that
several share), their records by MGET in chunks, a few chunks in flight at once; each record is decoded only as
far as its group's signature (no Vehicle is built), and a group's capability set is computed once. A fleet of
100,000 vehicles is a few hundred groups.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

from schemas.catalog import get_catalog
from schemas.powertrain import Powertrain
from services.redis_client import get_many
from services.registry.records import VehicleSignature, record_signature
from services.registry.store import Registry, chunked

SCAN_COUNT = 10_000
CHUNKS_IN_FLIGHT = 4


@dataclass(frozen=True, slots=True)
class VehicleGroup:
    """Registered vehicles alike in make, powertrain and capabilities."""

    make: str
    powertrain: Powertrain
    capabilities: frozenset[str]
    vehicles: int


async def fleet_groups(registry: Registry) -> list[VehicleGroup]:
    """Every registered vehicle, in groups of the same make, powertrain and capability set."""
    redis = registry.redis
    found = redis.scan_iter(match=registry.keys.vehicle_pattern, count=SCAN_COUNT)
    names = [key async for key in found]  # bytes, as MGET takes them back
    signatures: Counter[VehicleSignature] = Counter()
    for wave in chunked(list(chunked(names)), CHUNKS_IN_FLIGHT):
        replies = await asyncio.gather(*(get_many(redis, chunk) for chunk in wave))
        for records in replies:
            signatures.update(record_signature(record) for record in records if record is not None)
    catalog = get_catalog()
    groups = []
    for (make, powertrain_name, adds, lacks), count in signatures.items():
        powertrain = Powertrain(powertrain_name)
        capabilities = (catalog.default_capabilities(powertrain) | frozenset(adds)) - frozenset(lacks)
        groups.append(VehicleGroup(make, powertrain, capabilities, count))
    return groups


async def powertrain_counts(registry: Registry) -> Counter[Powertrain]:
    """How many registered vehicles have each powertrain."""
    counts: Counter[Powertrain] = Counter()
    for group in await fleet_groups(registry):
        counts[group.powertrain] += group.vehicles
    return counts
