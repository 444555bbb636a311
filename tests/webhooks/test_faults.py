"""Delivery when endpoints fail, on a real redis-server and real receivers: every event arrives once the endpoint
recovers (none lost, a duplicate only with the same eventId, one vehicle's events in order), an endpoint down for
good ends in dead-letter records with the reason, and a slow endpoint does not hold back a fast one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from schemas.webhooks import Reason, WebhookEvent
from services.webhooks import metrics
from services.webhooks.log import dead_letters, last_deliveries
from tests.webhooks.receiver import Receiver, receiving
from tests.webhooks.world import ODOMETER, SOC, World, delivering

pytestmark = pytest.mark.redis
PER_VEHICLE = 4


def failures() -> float:
    return float(metrics.FAILURES._value.get())


async def until(check: Callable[[], bool], timeout_s: float = 20.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.02)


def assert_all_once_in_order(receiver: Receiver, emitted: list[WebhookEvent]) -> None:
    """Every emitted event arrived; nothing else did; the first arrival of each vehicle's events is in their order."""
    ids = receiver.event_ids()
    assert set(ids) == {e.event_id for e in emitted}
    first_seen = list(dict.fromkeys(ids))
    for vehicle in {e.vehicle_id for e in emitted}:
        mine = [e.event_id for e in emitted if e.vehicle_id == vehicle]
        assert [i for i in first_seen if i in mine] == mine


async def fail_with_500(receiver: Receiver) -> None:
    receiver.fail(500)


async def hang_past_the_timeout(receiver: Receiver) -> None:
    receiver.hang(1.0)


async def close_connections(receiver: Receiver) -> None:
    await receiver.close_connections()


async def go_down(receiver: Receiver) -> None:
    await receiver.down()


async def recover(receiver: Receiver) -> None:
    receiver.heal()
    await receiver.up()


@pytest.mark.parametrize("fault", [fail_with_500, hang_past_the_timeout, close_connections, go_down])
async def test_every_event_arrives_in_order_once_the_endpoint_recovers(
    world: World, fault: Callable[[Receiver], Awaitable[None]]
) -> None:
    """Events of two vehicles emitted while the endpoint fails (500, a hang past the timeout, closed connections,
    refused connections) all arrive after it recovers, each vehicle's in order, duplicates only of an eventId."""
    async with receiving(world.amt) as receiver, delivering(world.settings, world.redis):
        webhook = await world.webhook(receiver.url, signals=[SOC, ODOMETER], vehicles=("bev", "ice"))
        await fault(receiver)
        before = failures()
        emitted = await world.emit(*(world.event(webhook, v) for _ in range(PER_VEHICLE) for v in ("bev", "ice")))
        await until(lambda: failures() >= before + 3)  # both queues failed, and at least one retried
        await recover(receiver)
        await receiver.wait_for(len(emitted))
        await world.settled()
    assert_all_once_in_order(receiver, emitted)
    assert receiver.bad_signatures == []


async def test_an_endpoint_down_for_good_ends_in_dead_letters_with_the_reason(world: World) -> None:
    """Retried for `webhook_retry_for_s` (2 s here) from its creation, then one dead-letter record per event, with
    the last error and the attempts; the log says `dead`; the stream has nothing pending."""
    settings = world.settings.model_copy(update={"webhook_retry_for_s": 2.0})
    async with receiving(world.amt) as receiver, delivering(settings, world.redis):
        webhook = await world.webhook(receiver.url, signals=[ODOMETER], vehicles=("bev", "ice"))
        await receiver.down()
        emitted = await world.emit(world.event(webhook, "bev"), world.event(webhook, "ice"))
        await world.settled(timeout_s=30)
    records = await dead_letters(world.redis, world.keys)
    assert sorted(r["event_id"] for r in records) == sorted(e.event_id for e in emitted)
    for record in records:
        assert record["reason"].startswith("ConnectError")
        assert record["attempts"] >= 2
        assert record["last_attempt_at"] >= record["first_attempt_at"]
        assert record["event"]["webhook_id"] == webhook.id
    logged = await last_deliveries(world.redis, world.keys, webhook.id, 10)
    assert [e["status"] for e in logged] == ["dead", "dead"]
    assert all(e["error"].startswith("ConnectError") for e in logged)


async def test_a_slow_endpoint_does_not_hold_back_a_fast_one(world: World) -> None:
    """While one webhook's endpoint hangs past the timeout on every POST, another webhook's events (of the same
    vehicle) all arrive."""
    async with (
        receiving(world.amt) as slow,
        receiving(world.amt) as fast,
        delivering(world.settings, world.redis),
    ):
        slow.hang(30)
        stuck = await world.webhook(slow.url, signals=[ODOMETER])
        quick = await world.webhook(fast.url, signals=[ODOMETER])
        await world.emit(*(world.event(stuck) for _ in range(3)))
        emitted = await world.emit(*(world.event(quick) for _ in range(3)))
        await fast.wait_for(3)
        assert slow.attempts >= 1
        assert slow.events == []
    assert fast.event_ids() == [e.event_id for e in emitted]


async def test_a_malformed_entry_is_dead_lettered_and_the_next_delivered(world: World) -> None:
    """An entry that is not an event (bad JSON, no `data`) becomes a dead-letter record with the reason; the
    worker goes on and delivers the next event."""
    async with receiving(world.amt) as receiver, delivering(world.settings, world.redis):
        webhook = await world.webhook(receiver.url, signals=[ODOMETER])
        stream = world.keys.shard(0).webhook_events
        await world.redis.xadd(stream, {"data": "{not json"})
        await world.redis.xadd(stream, {"other": "x"})
        (event,) = await world.emit(world.event(webhook))
        await receiver.wait_for(1)
        await world.settled()
    records = await dead_letters(world.redis, world.keys)
    assert [r["reason"].split(":")[0] for r in records] == ["not a webhook event", "not a webhook event"]
    assert records[0]["raw"] == "{not json"
    assert receiver.event_ids() == [event.event_id]


async def test_a_dead_endpoints_backlog_drains_within_the_retry_time_of_its_events(world: World) -> None:
    """The retry time counts from each event's creation: six events of one vehicle queued behind each other at a
    dead endpoint are all dead-lettered within it (plus slack for a loaded machine), not six times it in turn."""
    settings = world.settings.model_copy(update={"webhook_retry_for_s": 2.0})
    async with receiving(world.amt) as receiver, delivering(settings, world.redis):
        webhook = await world.webhook(receiver.url, signals=[ODOMETER])
        await receiver.down()
        emitted = await world.emit(*(world.event(webhook) for _ in range(6)))
        await world.settled(timeout_s=30)
    records = {r["event_id"]: r for r in await dead_letters(world.redis, world.keys)}
    assert set(records) == {e.event_id for e in emitted}
    for event in emitted:
        assert records[event.event_id]["last_attempt_at"] - event.created_at < 2000 + 3000


async def test_change_checks_waiting_at_a_failing_endpoint_coalesce(world: World) -> None:
    """While the endpoint fails, ten CHANGE_CHECKs queued behind a FIRST_DELIVERY are held as one (the others are
    acknowledged at once, counted `coalesced`); a SCHEDULED among them is kept. After recovery the FIRST_DELIVERY
    and the SCHEDULED arrive, in order; the kept CHANGE_CHECK finds nothing changed; nothing stays pending."""
    coalesced = metrics.DELIVERIES.labels("coalesced")
    before = coalesced._value.get()
    async with receiving(world.amt) as receiver, delivering(world.settings, world.redis):
        webhook = await world.webhook(receiver.url, signals=[ODOMETER])
        receiver.fail(500)
        first = world.event(webhook, reason=Reason.FIRST_DELIVERY)
        checks = [world.event(webhook, reason=Reason.CHANGE_CHECK) for _ in range(10)]
        scheduled = world.event(webhook, reason=Reason.SCHEDULED)
        await world.emit(first, *checks[:5], scheduled, *checks[5:])
        await until(lambda: coalesced._value.get() >= before + 9)
        await recover(receiver)
        await receiver.wait_for(2)
        await world.settled()
    assert receiver.event_ids() == [first.event_id, scheduled.event_id]
    assert coalesced._value.get() == before + 9
