"""The gatekeeper's Prometheus metrics, read back from the registry the /metrics endpoint serves."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from prometheus_client import REGISTRY
from redis.asyncio import Redis

from devtools.builders import make_vehicle, request_json
from schemas.access import VehicleAccessConfig
from schemas.powertrain import Powertrain
from services.gatekeeper.upkeep import trim_requests
from services.gatekeeper.worker import Gatekeeper
from services.keyspace import Keys
from services.registry import ConnectService, Registry

Runner = Callable[[], AbstractAsyncContextManager[Gatekeeper]]


def sample(name: str, **labels: str) -> float:
    """A metric's current value (0 when it has no sample yet); metrics are process-wide, so tests compare deltas."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def body(request_id: str, connection_id: str, target: str) -> bytes:
    return request_json(request_id, connection_id=connection_id, vehicle_id="bev", target=target)


async def test_decisions_duplicates_batches_and_cache_are_counted(
    redis: Redis, keys: Keys, registry: Registry, connect_service: ConnectService, running_later: Runner
) -> None:
    await registry.add_vehicle(make_vehicle(Powertrain.BEV, vehicle_id="bev"))
    await registry.publish_config(VehicleAccessConfig.select(signals=["odometer-traveleddistance"]))
    connection_id = (await connect_service.authorize("bev")).id
    before = {
        "allowed": sample("fleetgate_decisions_total", outcome="ALLOWED"),
        "rejected": sample("fleetgate_decisions_total", outcome="REJECTED"),
        "duplicates": sample("fleetgate_duplicates_total"),
        "batches": sample("fleetgate_batch_size_count"),
        "entries": sample("fleetgate_batch_size_sum"),
        "hits": sample("fleetgate_cache_hits_total"),
        "misses": sample("fleetgate_cache_misses_total"),
    }
    for i in range(5):
        await redis.xadd(keys.requests, {"data": body(f"m{i}", connection_id, "odometer-traveleddistance")})
    await redis.xadd(keys.requests, {"data": body("m0", connection_id, "odometer-traveleddistance")})  # duplicate
    await redis.xadd(keys.requests, {"data": b"not json"})
    async with running_later() as gatekeeper:
        deadline = asyncio.get_running_loop().time() + 10
        while await redis.xlen(keys.decisions) < 6 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)  # let the duplicate's batch finish too
        await trim_requests(gatekeeper)
    assert sample("fleetgate_decisions_total", outcome="ALLOWED") - before["allowed"] == 5
    assert sample("fleetgate_decisions_total", outcome="REJECTED") - before["rejected"] == 1
    assert sample("fleetgate_duplicates_total") - before["duplicates"] == 1
    assert sample("fleetgate_batch_size_count") - before["batches"] >= 1
    assert sample("fleetgate_batch_size_sum") - before["entries"] == 7
    # The first batch misses (one connection, one vehicle); every later lookup of them hits.
    assert sample("fleetgate_cache_misses_total") - before["misses"] == 2
    assert sample("fleetgate_cache_hits_total") - before["hits"] == 2 * 6 - 2
    assert sample("fleetgate_group_pending", stream="requests", group="gatekeeper") == 0
    assert sample("fleetgate_group_lag", stream="requests", group="gatekeeper") == 0


async def test_pending_and_lag_gauges_follow_the_group(redis: Redis, keys: Keys, running_later: Runner) -> None:
    """A second group that read 3 of 10 entries and acknowledged none: pending 3, lag 7."""
    await redis.xgroup_create(keys.requests, "audit", id="0", mkstream=True)
    for i in range(10):
        await redis.xadd(keys.requests, {"data": body(f"g{i}", "c-none", "odometer-traveleddistance")})
    await redis.xreadgroup("audit", "a", {keys.requests: ">"}, count=3)
    async with running_later() as gatekeeper:
        await trim_requests(gatekeeper)
    assert sample("fleetgate_group_pending", stream="requests", group="audit") == 3
    assert sample("fleetgate_group_lag", stream="requests", group="audit") == 7
