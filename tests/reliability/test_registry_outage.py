"""A failure of Redis is not poison (issue 14, item 3): while the registry cannot be read, valid requests wait, the
worker reports itself unhealthy, and everything is decided once when it is back; only entries whose own processing
fails are dead-lettered, with their real error, whichever worker gives up on them."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from typing import Any

import pytest
from redis.asyncio import Redis

from devtools.builders import TEST_TIMINGS, request_json
from devtools.workers import decided_ids
from schemas.decision import decide
from services.gatekeeper import worker as worker_module
from services.gatekeeper.worker import Gatekeeper, serve
from services.keyspace import Keys
from services.local_redis import RedisServer
from services.redis_client import connect
from services.settings import Settings
from services.streams import live_consumers
from tests.reliability.conftest import read_stream, wait_until

pytestmark = [pytest.mark.reliability]

REQUESTS = 2_000
OUTAGE_S = 6.0


def _stream_only_keys(keys: Keys) -> list[str]:
    """ACL key patterns for everything the worker touches but the registry's records (connections, vehicles)."""
    names = ("requests", "decisions", "deadletter", "decided:*", "connection-events", "gatekeeper:*")
    return [f"~{keys.prefix}:{name}" for name in names]


@pytest.mark.timeout(90)
async def test_a_registry_outage_longer_than_the_redelivery_budget_dead_letters_nothing(
    redis: Redis, keys: Keys, redis_server: RedisServer, connection_id: str
) -> None:
    """Registry reads refused (NOPERM) for 6 s, 12x the 0.5 s idle time after which entries are redelivered and
    with at most 2 deliveries: nothing dead-lettered, every request decided once, ALLOWED, after the outage; the
    heartbeat stops while the worker cannot decide and comes back after."""
    user, password = f"gk-{keys.prefix}", secrets.token_hex(8)
    await redis.acl_setuser(user, enabled=True, passwords=[f"+{password}"], keys=["*"], commands=["+@all"])
    url = redis_server.url.replace("redis://", f"redis://{user}:{password}@")
    timings = TEST_TIMINGS | {"min_idle_ms": 500, "max_deliveries": 2, "cache_ttl_s": 0.05, "heartbeat_ttl_s": 1}
    settings = Settings(redis_url=url, key_prefix=keys.prefix, **timings)
    worker_redis = connect(url)
    gatekeeper = Gatekeeper(settings, worker_redis)
    task = asyncio.create_task(serve(gatekeeper))
    try:
        assert await wait_until(lambda: _beating(redis, keys), timeout=10)
        # The outage: the worker's user may still read and write the streams, but not the registry.
        await redis.acl_setuser(user, enabled=True, reset_keys=True, keys=_stream_only_keys(keys), commands=["+@all"])
        for n in range(REQUESTS):
            target = "odometer-traveleddistance"
            await redis.xadd(
                keys.requests,
                {"data": request_json(f"r{n}", connection_id=connection_id, vehicle_id="bev", target=target)},
            )
        assert await wait_until(lambda: _not_beating(redis, keys), timeout=OUTAGE_S)  # unhealthy while it cannot decide
        await asyncio.sleep(OUTAGE_S - 3)
        assert await redis.xlen(keys.decisions) == 0
        await redis.acl_setuser(user, enabled=True, keys=["*"], commands=["+@all"])  # the registry is back
        assert await wait_until(lambda: _decided(redis, keys, REQUESTS), timeout=30)
        assert await wait_until(lambda: _beating(redis, keys), timeout=10)
    finally:
        gatekeeper.stop()
        await asyncio.wait_for(task, timeout=20)
        await worker_redis.aclose()
        await redis.acl_deluser(user)
    decided = await decided_ids(redis, keys)
    assert set(decided.values()) == {1}
    assert len(decided) == REQUESTS
    outcomes = Counter(decision["outcome"] for _, decision in await read_stream(redis, keys.decisions))
    assert outcomes == Counter({"ALLOWED": REQUESTS})
    assert await redis.xlen(keys.deadletter) == 0
    assert (await redis.xpending(keys.requests, settings.group))["pending"] == 0


@pytest.mark.timeout(60)
async def test_the_worker_that_gives_up_on_an_entry_names_the_error_another_worker_met(
    redis: Redis, keys: Keys, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker A fails on a poison entry and stops; worker B, which never processed it, dead-letters it once its
    deliveries run out, with A's error as the reason (not "not decided by any worker"); the record is then gone."""

    def failing_on_poison(request: Any, connection: Any, vehicle: Any) -> Any:
        if request.request_id == "poison":
            raise RuntimeError("poisoned by its payload")
        return decide(request, connection, vehicle)

    settings = Settings(redis_url=redis_server.url, key_prefix=keys.prefix, **TEST_TIMINGS | {"max_deliveries": 1})
    monkeypatch.setattr(worker_module, "decide", failing_on_poison)
    first = Gatekeeper(settings, redis)
    task = asyncio.create_task(serve(first))
    await redis.xadd(keys.requests, {"data": request_json("poison")})
    assert await wait_until(lambda: _has_failure(redis, keys), timeout=10)
    first.stop()
    await asyncio.wait_for(task, timeout=10)
    monkeypatch.undo()  # B would decide it fine: only its delivery count sends it to the dead letters

    second = Gatekeeper(settings, redis)
    task = asyncio.create_task(serve(second))
    try:
        assert await wait_until(lambda: _has_dead_letter(redis, keys), timeout=10)
    finally:
        second.stop()
        await asyncio.wait_for(task, timeout=10)
    ((_, letter),) = await read_stream(redis, keys.deadletter)
    assert letter["reason"] == "delivered 2 times; last failure: RuntimeError: poisoned by its payload"
    assert await redis.hlen(keys.shard(0).failures) == 0
    assert await redis.xlen(keys.decisions) == 0


async def _beating(redis: Redis, keys: Keys) -> bool:
    return bool(await live_consumers(redis, keys))


async def _not_beating(redis: Redis, keys: Keys) -> bool:
    return not await live_consumers(redis, keys)


async def _decided(redis: Redis, keys: Keys, count: int) -> bool:
    return int(await redis.xlen(keys.decisions)) >= count


async def _has_failure(redis: Redis, keys: Keys) -> bool:
    return int(await redis.hlen(keys.shard(0).failures)) > 0


async def _has_dead_letter(redis: Redis, keys: Keys) -> bool:
    return int(await redis.xlen(keys.deadletter)) > 0
