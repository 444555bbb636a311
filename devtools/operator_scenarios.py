"""Issue 14's scenarios as measurements for docs/reliability.md (`python -m bench.reliability`): a consumer stopped
while decisions flow (under the retention, then past the hard cap), and a registry outage longer than the
redelivery budget. Each runs on a private redis-server and returns its figures; the tests assert the same
behaviour (tests/reliability/test_lagging_consumer.py, test_registry_outage.py)."""

from __future__ import annotations

import asyncio
import secrets
import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY
from redis.asyncio import Redis

from devtools.builders import make_vehicle, request_json
from devtools.workers import decided_ids, publish, serving, wait_for_decisions
from schemas.access import VehicleAccessConfig
from services.consumers.audit import Auditor
from services.consumers.audit_store import AuditStore
from services.gatekeeper.worker import Gatekeeper, serve
from services.keyspace import Keys
from services.local_redis import start_redis_server
from services.redis_client import connect
from services.registry import Registry
from services.registry.connect import ConnectService
from services.settings import Settings
from services.streams import live_consumers


def _worker(settings: Settings, redis: Redis) -> AbstractAsyncContextManager[Gatekeeper]:
    return serving(Gatekeeper(settings, redis), serve)


async def lagging_consumer(directory: Path, *, requests: int, maxlen: int, hard_cap: int) -> dict[str, Any]:
    """An audit stopped while `requests` are decided; what it stores when it runs again, and what was reported."""
    server = start_redis_server(directory)
    redis = connect(server.url)
    keys = Keys(f"lag-{hard_cap}")
    base = Settings(redis_url=server.url, key_prefix=keys.prefix, block_ms=50, trim_interval_ms=200)
    settings = base.model_copy(update={"decisions_maxlen": maxlen, "decisions_hard_cap": hard_cap})
    counted_before = REGISTRY.get_sample_value(
        "fleetgate_trimmed_unread_total", {"stream": "decisions", "group": "audit"}
    )
    store = AuditStore.open(directory / "audit.db")
    try:
        async with _worker(settings, redis):
            await Auditor(redis, keys, store, block_ms=50).run(until_idle=True)  # creates the group, then stops
            await publish(redis, keys, 0, requests)
            await wait_for_decisions(redis, keys, requests, timeout=120)
            await asyncio.sleep(1)  # several trims while the audit is away
            held = int(await redis.xlen(keys.decisions))
        started = time.perf_counter()
        stats = await Auditor(redis, keys, store, block_ms=50).run(until_idle=True)
        caught_up_s = time.perf_counter() - started
    finally:
        store.close()
        await redis.aclose()
        server.stop()
    counted = (
        REGISTRY.get_sample_value("fleetgate_trimmed_unread_total", {"stream": "decisions", "group": "audit"}) or 0
    ) - (counted_before or 0)
    return {
        "requests": requests,
        "maxlen": maxlen,
        "hard cap": hard_cap,
        "held while stopped": held,
        "stored": stats.decisions,
        "lost": requests - stats.decisions,
        "counted by the gatekeeper": int(counted),
        "reported by the audit": stats.missed,
        "catch-up s": round(caught_up_s, 2),
    }


async def registry_outage(directory: Path, *, requests: int, outage_s: float) -> dict[str, Any]:
    """Registry reads refused (NOPERM) for `outage_s` while requests arrive, with a redelivery budget of about
    5 x 1 s: how many were decided, dead-lettered, how long the recovery took, what the health check saw."""
    server = start_redis_server(directory)
    admin = connect(server.url)
    keys = Keys("outage")
    registry = Registry(admin, keys)
    connection = await _one_connection(registry)
    user, password = "gatekeeper", secrets.token_hex(8)
    await admin.acl_setuser(user, enabled=True, passwords=[f"+{password}"], keys=["*"], commands=["+@all"])
    url = server.url.replace("redis://", f"redis://{user}:{password}@")
    settings = Settings(
        redis_url=url, key_prefix=keys.prefix, min_idle_ms=1000, reclaim_interval_ms=200, max_deliveries=5,
        cache_ttl_s=0.05, heartbeat_ttl_s=2, block_ms=100,
    )  # fmt: skip
    streams_only = [f"~{keys.prefix}:{name}" for name in ("requests", "decisions", "deadletter", "dedupe:*")]
    streams_only += [f"~{keys.prefix}:connection-events", f"~{keys.prefix}:gatekeeper:*"]
    worker_redis = connect(url)
    try:
        async with _worker(settings, worker_redis):
            await asyncio.sleep(1)
            await admin.acl_setuser(user, enabled=True, reset_keys=True, keys=streams_only, commands=["+@all"])
            outage_started = time.perf_counter()
            for n in range(requests):
                body = request_json(f"r{n}", connection_id=connection, vehicle_id="veh-1")
                await admin.xadd(keys.requests, {"data": body})
            healthy_during = True
            while time.perf_counter() - outage_started < outage_s:
                await asyncio.sleep(0.5)
                healthy_during = healthy_during and bool(await live_consumers(admin, keys))
            await admin.acl_setuser(user, enabled=True, keys=["*"], commands=["+@all"])
            restored = time.perf_counter()
            await wait_for_decisions(admin, keys, requests, timeout=60)
            recovered_s = time.perf_counter() - restored
        decided = await decided_ids(admin, keys)
        dead = int(await admin.xlen(keys.deadletter))
    finally:
        await worker_redis.aclose()
        await admin.aclose()
        server.stop()
    return {
        "requests": requests,
        "outage s": outage_s,
        "decided": len(decided),
        "duplicated": sum(count - 1 for count in decided.values()),
        "dead letters": dead,
        "recovered s": round(recovered_s, 2),
        "health check during the outage": "healthy" if healthy_during else "unhealthy (no heartbeat)",
    }


async def _one_connection(registry: Registry) -> str:
    """A vehicle connected with the odometer granted (the requests' target)."""
    await registry.add_vehicle(make_vehicle(vehicle_id="veh-1"))
    await registry.publish_config(VehicleAccessConfig.select(signals=["odometer-traveleddistance"]))
    return (await ConnectService(registry).authorize("veh-1")).id
