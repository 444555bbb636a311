"""The dashboard's live decisions feed on a real redis-server: the process's hub counts exactly the decisions of its
subscriber's app and filter, in about one message a second, without waiting for a slow subscriber; and the
`text/event-stream` the page opens, through the real app on uvicorn, sends those counts to a signed-in session."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, MutableMapping, Sequence
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from devtools.decisions import decision_payloads
from services.http.dashboard import live
from services.http.dashboard.live import EventStreamResponse
from services.http.live_hub import LiveHub, Subscriber
from services.http.live_window import LiveDecision, LiveFilter, decode_decision
from services.keyspace import Keys
from services.redis_client import Client
from services.registry import Registry
from tests.deployment import Deployment
from tests.http.dashboard.conftest import new_app

DEADLINE_S = 30.0
"""How long a test waits for counts that never come (a failure, not a speed requirement)."""


@pytest.fixture
async def hubs() -> AsyncIterator[list[LiveHub]]:
    """The test's hubs, stopped afterwards whatever happened (a hub left reading would outlive its test)."""
    made: list[LiveHub] = []
    yield made
    for hub in made:
        await hub.stop()


async def eventually(done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not done() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def publish(redis: Client, keys: Keys, payloads: Sequence[bytes]) -> None:
    """XADD each decision to its vehicle's shard's decisions stream, as the gatekeeper does, pipelined."""
    for start in range(0, len(payloads), 1000):
        async with redis.pipeline(transaction=False) as pipe:
            for payload in payloads[start : start + 1000]:
                vehicle_id = decode_decision(payload).vehicle_id or ""
                pipe.xadd(keys.shard_of_vehicle(vehicle_id).decisions, {"data": payload})
            await pipe.execute()


def expected(payloads: Sequence[bytes], app_id: str, live_filter: LiveFilter) -> Counter[str]:
    decisions = [decode_decision(p) for p in payloads]
    return Counter(d.outcome for d in decisions if d.app_id == app_id and live_filter.admits(d))


def as_message(raw: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(raw.removeprefix(b"data: "))
    return parsed


async def read_until(subscriber: Subscriber, total: int) -> list[dict[str, Any]]:
    """The subscriber's messages until their counts add up to `total`, then one tick more (nothing may follow)."""
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + DEADLINE_S
    while sum(sum(m["counts"].values()) for m in messages) < total and time.monotonic() < deadline:
        if raw := await subscriber.next(1.0):
            messages.append(as_message(raw))
    if raw := await subscriber.next(1.5):
        messages.append(as_message(raw))
    return messages


def summed(messages: list[dict[str, Any]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for message in messages:
        total.update({o: n for o, n in message["counts"].items() if n})
    return total


@pytest.mark.parametrize("keys", [Keys(f"test-{uuid.uuid4().hex[:10]}", shards=4)])
async def test_hub_counts_exactly_its_apps_decisions_in_few_messages(
    redis: Redis, keys: Keys, hubs: list[LiveHub]
) -> None:
    """20,000 decisions of two apps over four shards' streams: each subscriber's counts add up to exactly those of
    its app its filter admits, its recent list never holds the other app's, and it got a handful of messages."""
    hub = LiveHub(redis, keys)
    hubs.append(hub)
    everything = LiveFilter()
    narrowed = LiveFilter.parse(["ALLOWED", "PERMISSION_DENIED"], "odometer", "")
    subscribers = [await hub.subscribe("app-a", everything), await hub.subscribe("app-a", narrowed)]
    payloads = decision_payloads(["app-a", "app-b"], 20_000, seed=5)
    await publish(redis, keys, payloads)
    wanted = [expected(payloads, "app-a", f) for f in (everything, narrowed)]
    received = await asyncio.gather(*(read_until(s, sum(w.values())) for s, w in zip(subscribers, wanted, strict=True)))
    for messages, want, live_filter in zip(received, wanted, (everything, narrowed), strict=True):
        assert summed(messages) == want
        assert 1 <= len(messages) < 30
        recent = [d for m in messages for d in m["recent"]]
        assert recent
        assert all(d["vehicle_id"].startswith("app-a-") for d in recent)
        assert all(live_filter.admits(LiveDecision(**{k: d[k] for k in ("outcome", "target")})) for d in recent)
    await eventually(lambda: hub.decisions_read >= 20_000)  # the other app's, after the last of app-a's
    assert hub.decisions_read == 20_000
    for subscriber in subscribers:
        await hub.unsubscribe(subscriber)
    assert not hub.running


async def test_a_slow_subscriber_never_holds_the_reader_back(redis: Redis, keys: Keys, hubs: list[LiveHub]) -> None:
    """A subscriber that reads nothing while decisions keep coming: the hub reads them all anyway, skips that
    subscriber's ticks, and its later messages still add up to every decision, saying how many were dropped."""
    hub = LiveHub(redis, keys, tick_s=0.2)
    hubs.append(hub)
    slow = await hub.subscribe("app-a", LiveFilter())
    payloads = decision_payloads(["app-a"], 10_000, seed=9)
    for start in range(0, len(payloads), 1000):  # over about 2 s: a dozen ticks while nobody reads
        await publish(redis, keys, payloads[start : start + 1000])
        await asyncio.sleep(0.2)
    await eventually(lambda: hub.decisions_read >= len(payloads))
    assert hub.decisions_read == len(payloads)  # read with the subscriber's queue full all along
    messages = await read_until(slow, len(payloads))
    assert sum(summed(messages).values()) == len(payloads)
    assert max(m["dropped"] for m in messages) >= 1
    await hub.stop()
    assert await slow.next(0.1) is None  # stopped: the subscription's end
    assert (await hub.subscribe("app-a", LiveFilter())).queue.get_nowait() is None  # and for good


async def test_event_stream_through_the_app_counts_the_sessions_app(
    http_server: str, redis: Redis, registry: Registry
) -> None:
    """Signed in on the real server, the page's event stream (`text/event-stream`, a `retry:` first) sends counts
    that add up to exactly the app's ALLOWED decisions, none of another app's, in far fewer messages than
    decisions; a bad outcome answers 400, and no session is sent to sign in."""
    created = await new_app(registry)
    other = await new_app(registry, "Someone else")
    app_id = created.app.id
    async with httpx.AsyncClient(base_url=http_server, timeout=DEADLINE_S) as http:
        events = f"/dashboard/apps/{app_id}/live/events"
        assert (await http.get(events)).headers["location"] == "/dashboard/login"
        signed = await http.post("/dashboard/login", data={"token": created.management_token})
        assert signed.status_code == 303
        page = await http.get(f"/dashboard/apps/{app_id}/live")
        assert f'data-events="/dashboard/apps/{app_id}/live/events"' in page.text
        assert (await http.get(events, params={"outcome": "GRANTED"})).status_code == 400
        async with http.stream("GET", events, params={"outcome": "ALLOWED"}) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            payloads = decision_payloads([app_id, other.app.id], 20_000, seed=11)
            await publish(redis, registry.keys, payloads)
            want = sum(expected(payloads, app_id, LiveFilter.parse(["ALLOWED"], "", "")).values())
            lines = stream.aiter_lines()
            messages: list[dict[str, Any]] = []
            first = await anext(lines)
            assert first.startswith("retry: ")
            while sum(sum(m["counts"].values()) for m in messages) < want:
                line = await asyncio.wait_for(anext(lines), DEADLINE_S)
                if line.startswith("data: "):
                    messages.append(json.loads(line.removeprefix("data: ")))
    assert sum(m["counts"]["ALLOWED"] for m in messages) == want
    assert all(sum(m["counts"].values()) == m["counts"]["ALLOWED"] for m in messages)
    assert len(messages) < 30
    assert all(d["vehicle_id"].startswith(f"{app_id}-") for m in messages for d in m["recent"])


async def test_a_stream_whose_client_leaves_unsubscribes(redis: Redis, keys: Keys, hubs: list[LiveHub]) -> None:
    """The browser going away ends the response at once (not at its next write) and unsubscribes it: the hub,
    left without subscribers, stops reading."""
    hub = LiveHub(redis, keys)
    hubs.append(hub)
    sent: list[MutableMapping[str, Any]] = []
    leave = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await leave.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    response = EventStreamResponse(hub, "app-a", LiveFilter())
    streaming = asyncio.create_task(response({"type": "http"}, receive, send))
    while not hub.running:
        await asyncio.sleep(0.01)
    assert hub.subscribers == 1
    leave.set()
    await asyncio.wait_for(streaming, 5)
    assert not hub.running
    assert hub.subscribers == 0
    assert sent[0]["status"] == 200
    assert sent[1]["body"].startswith(b"retry: ")


async def test_a_quiet_stream_sends_heartbeats_and_ends_after_its_time(
    redis: Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch, hubs: list[LiveHub]
) -> None:
    """With nothing to say the stream sends comment lines (which keep proxies from closing it and browsers
    ignore), and after MAX_STREAM_S it ends, so that the browser reconnects and its session is checked again."""
    monkeypatch.setattr(live, "HEARTBEAT_S", 0.05)
    monkeypatch.setattr(live, "MAX_STREAM_S", 0.5)
    hub = LiveHub(redis, keys)
    hubs.append(hub)
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()  # the client never leaves
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(EventStreamResponse(hub, "app-a", LiveFilter())({"type": "http"}, receive, send), 5)
    bodies = [m["body"] for m in sent[1:]]
    assert bodies[0].startswith(b"retry: ")
    assert b": keep-alive\n\n" in bodies
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert not hub.running


async def test_hub_reads_every_shard_of_a_deployment(deployment: Deployment, hubs: list[LiveHub]) -> None:
    """On one Redis and on a Redis Cluster (a reader per master), the counts add up to the app's decisions."""
    hub = LiveHub(deployment.client, deployment.keys)
    hubs.append(hub)
    subscriber = await hub.subscribe("app-a", LiveFilter())
    payloads = decision_payloads(["app-a", "app-b"], 5000, seed=13)
    await publish(deployment.client, deployment.keys, payloads)
    want = expected(payloads, "app-a", LiveFilter())
    assert summed(await read_until(subscriber, sum(want.values()))) == want
    await hub.unsubscribe(subscriber)
    assert not hub.running
