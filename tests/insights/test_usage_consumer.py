"""The usage consumer on a real Redis: each decision counted exactly once (a commit run twice, a consumer killed
between its read and its commit, a batch taken over meanwhile), malformed entries skipped and acknowledged, buckets
expiring after the retention. The delivery tests run on the session's redis-server and on the local Redis Cluster
with six shards (conftest.py); the others on the redis-server only."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any, cast

import pytest
from redis.typing import StreamIdT

from devtools.builders import make_vehicle
from schemas.problems import Outcome
from services.insights.aggregate import read_usage, usage_lag
from services.insights.counts import UsageTotals
from services.insights.usage import UsageConsumer
from services.insights.window import Window
from services.keyspace import Keys, ShardKeys
from services.redis_client import Client
from services.registry import Registry
from services.settings import Settings
from services.streams import Entry, as_reply
from tests.test_tail import decision_data

APP = "usage-app"


@pytest.fixture
def settings(gatekeeper_settings: Settings) -> Settings:
    return gatekeeper_settings


def consumer(settings: Settings, redis: Client, name: str, **options: Any) -> UsageConsumer:
    return UsageConsumer(settings, redis, consumer=name, **options)


async def publish(redis: Client, keys: Keys, count: int, outcome: Outcome = Outcome.ALLOWED) -> None:
    """`count` decisions of the app, spread over every shard's decisions stream."""
    for n in range(count):
        shard = keys.shard(n % keys.shards)
        await redis.xadd(shard.decisions, {"data": decision_data(f"r{n}", outcome, app_id=APP)})


async def totals(redis: Client, keys: Keys) -> UsageTotals:
    return await read_usage(Registry(redis, keys), APP, Window.ending(timedelta(hours=1)))


async def read_batch(redis: Client, shard: ShardKeys, group: str, name: str, count: int = 100) -> list[Entry]:
    """What XREADGROUP hands consumer `name` of the shard's new decisions."""
    reply = as_reply(await redis.xreadgroup(group, name, {shard.decisions: ">"}, count=count))
    return [entry for _, entries in reply for entry in entries]


async def test_a_batch_committed_twice_is_counted_once(redis: Client, keys: Keys, settings: Settings) -> None:
    """Counting the same batch again (a commit repeated) changes nothing: its entries are no longer pending."""
    usage = consumer(settings, redis, "c1")
    await usage.start()
    await publish(redis, keys, 5)
    shard = keys.shard(0)
    batch = await read_batch(redis, shard, usage.group, "c1")
    await usage.count(shard, batch)
    first = await totals(redis, keys)
    await usage.count(shard, batch)
    assert await totals(redis, keys) == first
    assert first.allowed["read_charge"] == len(batch) > 0
    assert usage.stats.stray == len(batch)


async def test_a_consumer_killed_between_read_and_commit_loses_nothing(
    redis: Client, keys: Keys, settings: Settings
) -> None:
    """Entries a consumer read and died with stay pending; a live consumer claims them once idle and counts each
    once, on every shard: the totals are the decisions published, and nothing is left pending."""
    await consumer(settings, redis, "starter").start()
    await publish(redis, keys, 24)
    for shard in keys.all_shards:  # the dead consumer's reads: never committed
        assert await read_batch(redis, shard, settings.usage_group, "dead")
    await asyncio.sleep(0.15)
    live = consumer(settings, redis, "live", claim_idle_ms=100)
    stats = await live.run(until_idle=True)
    found = await totals(redis, keys)
    assert (found.outcomes["ALLOWED"], found.allowed["read_charge"], stats.counted) == (24, 24, 24)
    assert await usage_lag(Registry(redis, keys), settings.usage_group) == (True, 0)


async def test_a_batch_taken_over_meanwhile_is_left_to_its_new_owner(
    redis: Client, keys: Keys, settings: Settings
) -> None:
    """Entries another consumer claimed between this one's read and its commit are not counted by it; the rest
    are, and the new owner counts its own: each entry once."""
    first, second = consumer(settings, redis, "first"), consumer(settings, redis, "second")
    await first.start()
    await publish(redis, keys, 4 * keys.shards)
    shard = keys.shard(0)
    batch = await read_batch(redis, shard, first.group, "first")
    taken: list[StreamIdT] = [entry_id for entry_id, _ in batch[:2]]
    claimed = cast("list[Entry]", await redis.xclaim(shard.decisions, first.group, "second", 0, taken))
    await first.count(shard, batch)
    assert (first.stats.stray, (await totals(redis, keys)).outcomes["ALLOWED"]) == (2, len(batch) - 2)
    await second.count(shard, claimed)
    assert (await totals(redis, keys)).outcomes["ALLOWED"] == len(batch)
    assert int((await redis.xpending(shard.decisions, first.group))["pending"]) == 0


@pytest.mark.parametrize("deployment", ["redis"], indirect=True)
async def test_malformed_entries_are_skipped_and_acknowledged(redis: Client, keys: Keys, settings: Settings) -> None:
    """Entries without `data`, not JSON or not a decision are counted as skipped and acknowledged, never counted
    into a bucket; decisions of no app are acknowledged without a count; the consumer goes on."""
    await redis.xadd(keys.decisions, {"other": "field"})
    await redis.xadd(keys.decisions, {"data": "{not json"})
    await redis.xadd(keys.decisions, {"data": '{"outcome": "ALLOWED", "target": "lock"}'})
    await redis.xadd(keys.decisions, {"data": decision_data("r-none", app_id=None)})
    await publish(redis, keys, 2, Outcome.PERMISSION_DENIED)
    stats = await consumer(settings, redis, "c").run(until_idle=True)
    assert (stats.read, stats.skipped, stats.unattributed, stats.counted) == (6, 3, 1, 2)
    found = await totals(redis, keys)
    assert (found.outcomes, found.denied) == ({"PERMISSION_DENIED": 2}, {"read_charge": 2})
    assert int((await redis.xpending(keys.decisions, settings.usage_group))["pending"]) == 0


@pytest.mark.parametrize("deployment", ["redis"], indirect=True)
async def test_buckets_expire_after_the_retention(redis: Client, keys: Keys, settings: Settings) -> None:
    """A bucket expires the retention after the end of its hour: a current one in 35 days and at most an hour,
    one of decisions older than the retention at once (they are acknowledged all the same)."""
    old_ms = int((time.time() - 40 * 86_400) * 1000)
    await redis.xadd(keys.decisions, {"data": decision_data("r-old", app_id=APP)}, id=f"{old_ms}-0")
    await publish(redis, keys, 1)
    stats = await consumer(settings, redis, "c").run(until_idle=True)
    assert stats.counted == 2
    assert await redis.exists(keys.shard(0).usage(APP, old_ms // 3_600_000)) == 0
    ttl = await redis.ttl(keys.shard(0).usage(APP, int(time.time()) // 3600))
    assert 35 * 86_400 - 5 <= ttl <= 35 * 86_400 + 3600


@pytest.mark.parametrize("deployment", ["redis"], indirect=True)
async def test_not_capable_answers_are_split_by_make_and_powertrain(
    redis: Client, keys: Keys, settings: Settings
) -> None:
    """A VEHICLE_NOT_CAPABLE decision counts under its vehicle's make and powertrain, read from the registry; a
    vehicle no longer registered counts as `?`."""
    await Registry(redis, keys).add_vehicle(make_vehicle(vehicle_id="veh-1"))
    for n, vehicle_id in enumerate(["veh-1", "veh-1", "gone"]):
        data = decision_data(f"r{n}", Outcome.VEHICLE_NOT_CAPABLE, vehicle_id=vehicle_id, app_id=APP)
        await redis.xadd(keys.decisions, {"data": data})
    await consumer(settings, redis, "c").run(until_idle=True)
    found = await totals(redis, keys)
    assert found.not_capable == {("charge-ischarging", "Tesla", "BEV"): 2, ("charge-ischarging", "?", "?"): 1}
