"""Trimming under sustained load with a slow downstream group; poison entries while healthy traffic flows."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, cast

import pytest
from redis.asyncio import Redis

from devtools.workers import decided_ids, publish, start_worker, stop, wait_for_decisions
from schemas.decision import decide
from services.gatekeeper import worker as worker_module
from services.gatekeeper.worker import Gatekeeper
from services.keyspace import Keys
from services.local_redis import RedisServer

pytestmark = [pytest.mark.reliability]
Runner = Callable[[], AbstractAsyncContextManager[Gatekeeper]]
Entries = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]

REQUESTS = 20_000


@pytest.mark.timeout(120)
async def test_requests_stay_bounded_and_nothing_is_trimmed_before_every_group_acked(
    redis: Redis, keys: Keys, redis_server: RedisServer
) -> None:
    """A slow audit group on the requests stream: it still receives every entry; the stream shrinks behind it."""
    await redis.xgroup_create(keys.requests, "slow-audit", id="0", mkstream=True)
    worker = start_worker(redis_server.url, keys, trim_interval_ms="100")
    received: Counter[str] = Counter()
    longest = 0

    async def slow_group() -> None:
        while sum(received.values()) < REQUESTS:
            response = cast(Entries, await redis.xreadgroup("slow-audit", "a", {keys.requests: ">"}, count=300))
            for _stream, entries in response or []:
                for _entry_id, fields in entries:
                    received[json.loads(fields[b"data"])["request_id"]] += 1
                await redis.xack(keys.requests, "slow-audit", *[entry_id for entry_id, _ in entries])
            await asyncio.sleep(0.05)  # about 6k entries a second: slower than the producer

    async def produce() -> None:
        nonlocal longest
        for first in range(0, REQUESTS, 1000):
            await publish(redis, keys, first, 1000)
            longest = max(longest, await redis.xlen(keys.requests))
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(asyncio.gather(slow_group(), produce()), timeout=90)
        assert await wait_for_decisions(redis, keys, REQUESTS, timeout=30) >= REQUESTS
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while await redis.xlen(keys.requests) > 0 and loop.time() < deadline:
            await asyncio.sleep(0.1)  # every group acknowledged everything: the next trims empty it
        remaining = await redis.xlen(keys.requests)
    finally:
        await asyncio.to_thread(stop, [worker])
    assert len(received) == REQUESTS  # the slow group saw every entry: none was trimmed before it read it
    assert set(received.values()) == {1}
    assert remaining == 0
    assert 0 < longest <= REQUESTS


@pytest.mark.timeout(60)
async def test_poison_is_dead_lettered_while_healthy_traffic_is_decided(
    redis: Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch, running_later: Runner
) -> None:
    """Five entries whose processing always fails, among 5,000: the 5,000 are decided, the five dead-lettered."""

    def failing_on_poison(request: Any, connection: Any, vehicle: Any) -> Any:
        if request.request_id.startswith("poison"):
            raise RuntimeError("poisoned")
        return decide(request, connection, vehicle)

    monkeypatch.setattr(worker_module, "decide", failing_on_poison)
    async with running_later():
        for n in range(5):
            body = {"request_id": f"poison-{n}", "connection_id": "c", "vehicle_id": "v", "kind": "signal",
                    "target": "odometer-traveleddistance", "issued_at": "2026-11-29T12:00:00Z"}  # fmt: skip
            await redis.xadd(keys.requests, {"data": json.dumps(body)})
            await publish(redis, keys, n * 1000, 1000)
        assert await wait_for_decisions(redis, keys, 5000, timeout=30) >= 5000
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while await redis.xlen(keys.deadletter) < 5 and loop.time() < deadline:
            await asyncio.sleep(0.1)
    decided = await decided_ids(redis, keys)
    assert len(decided) == 5000
    assert not [r for r in decided if r.startswith("poison")]
    letters = [json.loads((f or {})[b"data"]) for _, f in await redis.xrange(keys.deadletter) or []]
    assert sorted(json.loads(letter["fields"]["data"])["request_id"] for letter in letters) == [
        f"poison-{n}" for n in range(5)
    ]
    assert all("RuntimeError: poisoned" in letter["reason"] for letter in letters)
    assert (await redis.xpending(keys.requests, "gatekeeper"))["pending"] == 0
