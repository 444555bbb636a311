"""The webhook triggers on a real redis-server, over two shards: revocations make one VEHICLE_ERROR per
subscription and end them (again, with the same ids, after a crash before the acknowledgement), command successes
make one coalesced CHANGE_CHECK per subscription with change triggers, the change poll and the schedules keep their
cadence (driven by a given clock), and one of two services runs them, the other taking over."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from devtools.builders import TEST_TIMINGS, make_vehicle
from schemas.application import AppMode
from schemas.messages import ResponseMessage, ResponseStatus
from schemas.powertrain import Powertrain
from schemas.webhooks import EventType, Reason, Triggers, Webhook, WebhookEvent
from services.keyspace import Keys
from services.local_redis import RedisServer
from services.redis_client import Client
from services.registry import AppStore, ConnectService, Registry
from services.settings import Settings
from services.streams import Entry
from services.webhooks.audience import Audience
from services.webhooks.lease import Lease
from services.webhooks.schedule import Schedule
from services.webhooks.store import WebhookStore
from services.webhooks.stream_triggers import StreamEntry
from services.webhooks.triggers import TriggerService
from tests.deployment import Deployment

pytestmark = pytest.mark.redis
SOC = "tractionbattery-stateofcharge"
ODOMETER = "odometer-traveleddistance"
NEVER = 2**50
"""A due time no test reaches: the stream triggers' tests start with the change poll out of the way."""


@pytest.fixture
def keys() -> Keys:
    """Two shards: connection events, responses and webhook events of different vehicles on different streams."""
    return Keys(prefix=f"test-{uuid.uuid4().hex[:10]}", shards=2)


@dataclass
class World:
    """Two vehicles of one app, each connected by its own user, and webhooks subscribed to them:
    `changes` (verified, change triggers) by v1 and v2, `quiet` (verified, no change trigger) and `unverified`
    by v1."""

    app_id: str
    c1: str
    c2: str
    changes: Webhook
    quiet: Webhook
    unverified: Webhook
    store: WebhookStore


async def make_webhook(
    store: WebhookStore, app_id: str, amt: str, name: str, triggers: Triggers, *, verified: bool = True
) -> Webhook:
    webhook = await store.create(
        app_id,
        management_token=amt,
        name=name,
        callback_url="http://127.0.0.1:9/hook",
        signals=[SOC, ODOMETER],
        triggers=triggers,
    )
    return await store.set_verified(webhook, True) if verified else webhook


@pytest.fixture
async def world(redis: Redis, keys: Keys) -> World:
    return await build_world(redis, keys)


async def build_world(redis: Client, keys: Keys) -> World:
    registry = Registry(redis, keys)
    connect_service = ConnectService(registry)
    created = await AppStore(redis, keys).create("Fleet", ["https://app.example/cb"], AppMode.TEST)
    app_id, amt = created.app.id, created.management_token
    for vehicle_id in ("v1", "v2"):
        await registry.add_vehicle(make_vehicle(Powertrain.BEV, vehicle_id=vehicle_id))
    scope = "read_battery read_odometer"
    c1 = await connect_service.authorize("v1", scope=scope, app_id=app_id, user_id="u1")
    c2 = await connect_service.authorize("v2", scope=scope, app_id=app_id, user_id="u2")
    store = WebhookStore(redis, keys)
    changes = await make_webhook(store, app_id, amt, "changes", Triggers())
    quiet = await make_webhook(store, app_id, amt, "quiet", Triggers(signal_changed=()))
    unverified = await make_webhook(store, app_id, amt, "unverified", Triggers(), verified=False)
    for webhook in (changes, quiet, unverified):
        await store.subscribe(webhook.id, "v1", c1.id)
    await store.subscribe(changes.id, "v2", c2.id)
    await redis.zadd(keys.webhooks_due, {"poll": NEVER})  # a test of the poll deletes it
    return World(app_id, c1.id, c2.id, changes, quiet, unverified, store)


@pytest.fixture
def settings(redis_server: RedisServer, keys: Keys) -> Settings:
    return Settings(
        redis_url=redis_server.url,
        key_prefix=keys.prefix,
        shards=keys.shards,
        **TEST_TIMINGS,
        webhook_poll_s=3600,
        webhook_lease_s=1,
    )


@contextlib.asynccontextmanager
async def running(service: TriggerService) -> AsyncIterator[asyncio.Event]:
    """The service runs for the block; leaving it sets the stop event, and the service must end within 5 s."""
    stopping = asyncio.Event()
    task = asyncio.create_task(service.run(stopping))
    try:
        yield stopping
    finally:
        stopping.set()
        await asyncio.wait_for(task, timeout=5)


async def wait_until(condition: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


async def emitted_by_shard(redis: Client, keys: Keys) -> list[list[WebhookEvent]]:
    """The events on each shard's webhook-events stream, in order."""
    found = []
    for shard in keys.all_shards:
        entries = cast("list[Entry]", await redis.xrange(shard.webhook_events))
        found.append([WebhookEvent.model_validate_json(fields[b"data"]) for _, fields in entries])
    return found


async def emitted(redis: Client, keys: Keys) -> list[WebhookEvent]:
    """Every event on every shard's webhook-events stream (shard by shard)."""
    return [event for events in await emitted_by_shard(redis, keys) for event in events]


async def pending(redis: Redis, stream: str, group: str) -> int:
    summary = await redis.xpending(stream, group)
    return int(summary["pending"])


def response(vehicle_id: str, kind: str, status: ResponseStatus = ResponseStatus.SUCCESS) -> bytes:
    now = datetime.now(UTC)
    return ResponseMessage(
        response_id=uuid.uuid4().hex,
        request_id=uuid.uuid4().hex,
        decision_id=uuid.uuid4().hex,
        connection_id="c",
        vehicle_id=vehicle_id,
        kind="command" if kind == "command" else "signal",
        target="lock" if kind == "command" else SOC,
        status=status,
        body=None if kind == "command" else {"percentRemaining": 0.5},
        oem_updated_at=None,
        retrieved_at=now,
        error=None,
        responded_at=now,
    ).encode()


async def test_a_revocation_makes_one_error_per_subscription_of_its_connection_and_ends_them(
    redis: Redis, keys: Keys, world: World, settings: Settings, connect_service: ConnectService
) -> None:
    """Revoking c1: one REVOKED VEHICLE_ERROR (CONNECTED_SERVICES_ACCOUNT/PERMISSION, user u1) per verified webhook
    v1 was subscribed to through it, none for the unverified one, every v1 subscription gone, v2's untouched."""
    service = TriggerService(settings, redis)
    async with running(service):
        await connect_service.revoke(world.c1)
        await wait_until(lambda: _no_subscriptions(world, "v1"))
        await wait_until(lambda: _settled(redis, keys, settings.webhook_group))
    events = await emitted(redis, keys)
    assert sorted(e.webhook_id for e in events) == sorted([world.changes.id, world.quiet.id])
    for event in events:
        assert (event.event_type, event.reason) == (EventType.VEHICLE_ERROR, Reason.REVOKED)
        assert (event.vehicle_id, event.connection_id, event.user_id) == ("v1", world.c1, "u1")
        assert [(e["type"], e["code"]) for e in event.errors] == [("CONNECTED_SERVICES_ACCOUNT", "PERMISSION")]
    assert await world.store.subscribers(world.changes.id) == {"v2": world.c2}
    assert await world.store.subscribers(world.unverified.id) == {}


async def _no_subscriptions(world: World, vehicle_id: str) -> bool:
    return not await world.store.of_vehicle(vehicle_id)


async def _settled(redis: Redis, keys: Keys, group: str) -> bool:
    """Every triggers stream of every shard read and acknowledged by the group."""
    for shard in keys.all_shards:
        for stream in (shard.connection_events, shard.responses):
            if not await redis.exists(stream):
                continue
            groups = {info["name"].decode(): info for info in await redis.xinfo_groups(stream)}
            info = groups.get(group)
            if info is None or int(info["pending"]) or int(info["lag"] or 0):
                return False
    return True


async def test_a_crash_before_the_acknowledgement_makes_the_same_revocation_events_again(
    redis: Redis,
    keys: Keys,
    world: World,
    settings: Settings,
    connect_service: ConnectService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A service that emits the revocation events but fails before it ends the subscriptions leaves the event
    pending; another service claims it and emits the same event ids again, then ends the subscriptions."""
    crashing = TriggerService(settings, redis)

    async def lost_redis(*_: str) -> bool:
        raise RedisConnectionError("Redis went away")

    monkeypatch.setattr(crashing.stream_triggers.store, "unsubscribe", lost_redis)
    async with running(crashing):
        await connect_service.revoke(world.c1)
        await wait_until(lambda: _count(emitted(redis, keys), 2))
    first = sorted(e.event_id for e in await emitted(redis, keys))
    assert len(await world.store.of_vehicle("v1")) == 3
    events_stream = keys.shard_of_connection(world.c1).connection_events
    assert await pending(redis, events_stream, settings.webhook_group) == await redis.xlen(events_stream)

    async with running(TriggerService(settings, redis)):
        await wait_until(lambda: _no_subscriptions(world, "v1"))
        await wait_until(lambda: _settled(redis, keys, settings.webhook_group))
    again = [e.event_id for e in await emitted(redis, keys)]
    assert Counter(again) == dict.fromkeys(first, 2)


async def _count(events: Awaitable[list[WebhookEvent]], at_least: int) -> bool:
    return len(await events) >= at_least


async def test_command_successes_make_one_change_check_per_watching_subscription(
    redis: Redis, keys: Keys, world: World, settings: Settings
) -> None:
    """Three successful commands on v1 in one batch make one CHANGE_CHECK for `changes` (none for the webhook
    without change triggers or the unverified one); reads, a failed command and unreadable entries make none, and
    the service goes on: a later command on v2 makes v2's."""
    v1, v2 = keys.shard_of_vehicle("v1").responses, keys.shard_of_vehicle("v2").responses
    for _ in range(3):
        await redis.xadd(v1, {"data": response("v1", "command")})
    await redis.xadd(v2, {"data": response("v2", "signal")})
    await redis.xadd(v2, {"data": response("v2", "command", ResponseStatus.ERROR)})
    await redis.xadd(v2, {"data": b"{not json"})
    await redis.xadd(v2, {"other": b"field"})
    service = TriggerService(settings, redis)
    async with running(service):
        await wait_until(lambda: _settled(redis, keys, settings.webhook_group))
        assert service.stats.unreadable == 2
        events = await emitted(redis, keys)
        assert [(e.webhook_id, e.vehicle_id, e.reason, e.user_id) for e in events] == [
            (world.changes.id, "v1", Reason.CHANGE_CHECK, "u1")
        ]
        assert events[0].event_type is EventType.VEHICLE_STATE
        await redis.xadd(v2, {"data": response("v2", "command")})
        await wait_until(lambda: _count(emitted(redis, keys), 2))
        await wait_until(lambda: _settled(redis, keys, settings.webhook_group))
    events = await emitted(redis, keys)
    assert sorted((e.webhook_id, e.vehicle_id, e.connection_id) for e in events) == sorted(
        [(world.changes.id, "v1", world.c1), (world.changes.id, "v2", world.c2)]
    )


async def test_the_change_poll_and_a_schedule_keep_their_cadence(redis: Redis, keys: Keys, world: World) -> None:
    """Driven by a given clock: the poll makes one CHANGE_CHECK per subscription of the verified webhooks with
    change triggers every 300 ms, a 2 s schedule one SCHEDULED per subscription every 2 s from the poll that found
    it; a late step runs each once (no burst); a step repeated by a takeover makes the same event ids; an
    unverified webhook and a revoked connection get nothing more."""
    store = world.store
    key = await store.signing_key(world.app_id)
    assert key is not None
    timed = await make_webhook(store, world.app_id, key, "timed", Triggers(signal_changed=(), schedule_s=2))
    await store.subscribe(timed.id, "v1", world.c1)
    await store.subscribe(timed.id, "v2", world.c2)
    await redis.delete(keys.webhooks_due)
    schedule = Schedule(Audience(redis, keys), poll_s=0.3)
    t0 = 1_800_000_000_000

    async def step(at_ms: int, runner: Schedule = schedule) -> list[tuple[str, str, Reason]]:
        before = await emitted_by_shard(redis, keys)
        await runner.step(at_ms)
        after = await emitted_by_shard(redis, keys)
        new = [e for old, now in zip(before, after, strict=True) for e in now[len(old) :]]
        return sorted((e.webhook_id, e.vehicle_id, e.reason) for e in new)

    polled = sorted([(world.changes.id, "v1", Reason.CHANGE_CHECK), (world.changes.id, "v2", Reason.CHANGE_CHECK)])
    scheduled = sorted([(timed.id, "v1", Reason.SCHEDULED), (timed.id, "v2", Reason.SCHEDULED)])
    assert await step(t0) == sorted(polled + scheduled)
    assert await step(t0 + 100) == []
    assert await step(t0 + 300) == polled
    assert await step(t0 + 599) == []
    assert await step(t0 + 600) == polled

    # Another process takes over after the holder died between emitting the t0 + 600 poll and moving it on.
    takeover = Schedule(Audience(redis, keys), poll_s=0.3)
    await redis.zadd(keys.webhooks_due, {"poll": t0 + 600})
    ids = Counter(e.event_id for e in await emitted(redis, keys))
    assert await step(t0 + 650, takeover) == polled
    again = Counter(e.event_id for e in await emitted(redis, keys)) - ids
    assert len(again) == 2  # two events, each with the id of one the t0 + 600 poll made
    assert all(ids[i] == 1 for i in again)

    assert await step(t0 + 900, takeover) == polled
    assert await step(t0 + 1200, takeover) == polled
    assert await step(t0 + 2000, takeover) == sorted(polled + scheduled)  # the t0 + 1800 poll is not made up
    assert await step(t0 + 2300, takeover) == polled
    await store.set_verified(timed, False)
    await ConnectService(Registry(redis, keys)).revoke(world.c2)
    assert await step(t0 + 4000, takeover) == [(world.changes.id, "v1", Reason.CHANGE_CHECK)]
    assert await redis.zrange(keys.webhooks_due, 0, -1) == [b"poll"]


async def test_an_entry_that_makes_the_triggers_fail_is_given_up_alone(
    redis: Redis, keys: Keys, world: World, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch whose handling raises (a bug, not Redis) is handled again entry by entry: the entry that raises is
    logged and acknowledged without events, the others make theirs, and the service goes on."""
    service = TriggerService(settings, redis)
    change_checks = service.stream_triggers._change_checks

    async def failing_on_v2(changed: dict[str, StreamEntry]) -> list[WebhookEvent]:
        if "v2" in changed:
            raise RuntimeError("a bug")
        return await change_checks(changed)

    monkeypatch.setattr(service.stream_triggers, "_change_checks", failing_on_v2)
    await redis.xadd(keys.shard_of_vehicle("v2").responses, {"data": response("v2", "command")})
    await redis.xadd(keys.shard_of_vehicle("v1").responses, {"data": response("v1", "command")})
    async with running(service):
        await wait_until(lambda: _settled(redis, keys, settings.webhook_group))
        assert service.stats.failed == 1
        await redis.xadd(keys.shard_of_vehicle("v1").responses, {"data": response("v1", "command")})
        await wait_until(lambda: _count(emitted(redis, keys), 2))
    assert [(e.webhook_id, e.vehicle_id) for e in await emitted(redis, keys)] == [(world.changes.id, "v1")] * 2


async def test_a_lease_is_held_by_one_and_taken_over_when_it_expires(redis: Redis, keys: Keys) -> None:
    """While one holds the lease (renewing it) the other cannot take it; once it expires the other takes it, and
    the first can neither renew nor release what is now the other's."""
    first = Lease(redis, keys.webhooks_triggers_lease, 300)
    second = Lease(redis, keys.webhooks_triggers_lease, 300)
    assert await first.hold()
    assert not await second.hold()
    assert await first.hold()  # renewed
    await wait_until(second.hold)
    assert not await first.hold()
    first.held = True  # as if it still believed it held the lease
    await first.release()
    assert await redis.get(keys.webhooks_triggers_lease) == second.token.encode()
    await second.release()
    assert await redis.get(keys.webhooks_triggers_lease) is None


async def test_one_of_two_services_polls_and_the_other_takes_over_when_it_stops(
    redis: Redis, keys: Keys, world: World, settings: Settings
) -> None:
    """Two services with a 100 ms poll: only the lease holder polls; when it stops the other polls on from the due
    time it left, so no poll is made twice (every event id is unique) and each makes one event per subscription."""
    await redis.delete(keys.webhooks_due)
    fast = settings.model_copy(update={"webhook_poll_s": 0.1, "webhook_lease_s": 5})
    services = [TriggerService(fast, redis), TriggerService(fast, redis)]
    stops = [asyncio.Event(), asyncio.Event()]
    tasks = [asyncio.create_task(s.run(stop)) for s, stop in zip(services, stops, strict=True)]
    try:
        await wait_until(lambda: _polled(services, 3))
        leader = 0 if services[0].schedule.polls else 1
        other = 1 - leader
        assert services[other].schedule.polls == 0
        assert services[leader].stats.leading
        assert not services[other].stats.leading
        stops[leader].set()
        await asyncio.wait_for(tasks[leader], timeout=5)
        led = services[leader].schedule.polls
        await wait_until(lambda: _polled([services[other]], 3))
        assert services[leader].schedule.polls == led
    finally:
        for stop in stops:
            stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)
    events = await emitted(redis, keys)
    assert len({e.event_id for e in events}) == len(events)
    per_subscription = Counter((e.webhook_id, e.vehicle_id, e.reason) for e in events)
    assert set(per_subscription) == {
        (world.changes.id, "v1", Reason.CHANGE_CHECK),
        (world.changes.id, "v2", Reason.CHANGE_CHECK),
    }
    assert per_subscription[(world.changes.id, "v1", Reason.CHANGE_CHECK)] == sum(s.schedule.polls for s in services)


async def _polled(services: list[TriggerService], at_least: int) -> bool:
    return any(s.schedule.polls >= at_least for s in services)


async def test_the_triggers_on_a_redis_cluster(deployment: Deployment) -> None:
    """On one redis-server and on a Redis Cluster of six shards: a revocation, a command and a poll make their
    events, every multi-key command in one slot (the fixture checks)."""
    redis, keys = deployment.client, deployment.keys
    world = await build_world(redis, keys)
    settings = deployment.settings(**TEST_TIMINGS, webhook_poll_s=3600, webhook_lease_s=1)
    async with running(TriggerService(settings, redis)):
        await ConnectService(Registry(redis, keys)).revoke(world.c1)
        await redis.xadd(keys.shard_of_vehicle("v2").responses, {"data": response("v2", "command")})
        await wait_until(lambda: _count(emitted(redis, keys), 3))
        await redis.delete(keys.webhooks_due)  # the poll is due now
        await wait_until(lambda: _count(emitted(redis, keys), 4))
    made = sorted((e.webhook_id, e.vehicle_id, e.reason) for e in await emitted(redis, keys))
    assert made == sorted(
        [
            (world.changes.id, "v1", Reason.REVOKED),
            (world.quiet.id, "v1", Reason.REVOKED),
            (world.changes.id, "v2", Reason.CHANGE_CHECK),
            (world.changes.id, "v2", Reason.CHANGE_CHECK),
        ]
    )
