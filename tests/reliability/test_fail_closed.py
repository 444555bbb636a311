"""Fail closed: requests that try to bring their own grant, borrow another's, or arrive while the registry is away.

None of them may ever be ALLOWED: scopes come from the registry only, and a registry read that fails leaves
the request undecided (pending, retried) rather than decided on a guess.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from devtools.builders import make_vehicle
from schemas.access import VehicleAccessConfig
from schemas.powertrain import Powertrain
from services.gatekeeper.worker import Gatekeeper, serve
from services.keyspace import Keys
from services.redis_client import connect
from services.registry import ConnectService, Registry
from services.settings import Settings
from tests.reliability.conftest import read_stream, request_body, stream_has, wait_until

pytestmark = [pytest.mark.reliability]
Runner = Callable[[], AbstractAsyncContextManager[Gatekeeper]]

GRANTED = "odometer-traveleddistance"  # read_odometer: granted
NOT_GRANTED = "charge-ischarging"  # read_charge: in the config, unchecked by the owner
COMMAND_NOT_GRANTED = "unlock"  # control_security: in the config, unchecked


@pytest.fixture
async def grant(registry: Registry, connect_service: ConnectService) -> dict[str, str]:
    """Two BEVs with a connection each (read_charge and control_security unchecked), and a revoked one."""
    for vehicle_id in ("bev", "bev-2"):
        await registry.add_vehicle(make_vehicle(Powertrain.BEV, vehicle_id=vehicle_id))
    await registry.publish_config(
        VehicleAccessConfig.select(signals=[GRANTED, NOT_GRANTED, "tractionbattery-stateofcharge"], commands=["unlock"])
    )
    unchecked = ["read_charge", "control_security"]
    live = await connect_service.authorize("bev", unchecked=unchecked)
    other = await connect_service.authorize("bev-2", unchecked=unchecked)
    revoked = await connect_service.authorize("bev", unchecked=unchecked)
    await connect_service.revoke(revoked.id)
    return {"live": live.id, "other": other.id, "revoked": revoked.id}


async def decisions_by_request(redis: Redis, keys: Keys) -> dict[str, list[dict[str, Any]]]:
    by_request: dict[str, list[dict[str, Any]]] = {}
    for _, decision in await read_stream(redis, keys.decisions):
        by_request.setdefault(decision["request_id"], []).append(decision)
    return by_request


async def test_requests_cannot_bring_borrow_or_revive_a_grant(
    redis: Redis, keys: Keys, grant: dict[str, str], running_later: Runner
) -> None:
    """Own scopes, another vehicle's connection, a revoked, unknown or look-alike connection: never ALLOWED."""
    live, other, revoked = grant["live"], grant["other"], grant["revoked"]
    own_grant: dict[str, Any] = {
        "scopes": "read_charge control_security",
        "scope": "required:read_charge",
        "permissions": ["read_charge", "control_security"],
        "granted": True,
        "status": "active",
        "connection": {"id": live, "vehicle_id": "bev", "permissions": ["read_charge"], "status": "active"},
    }
    sent: dict[str, tuple[bytes, str]] = {
        "control": (request_body("control", live, "bev", GRANTED), "ALLOWED"),
        "own-scopes": (request_body("own-scopes", live, "bev", NOT_GRANTED, **own_grant), "PERMISSION_DENIED"),
        "own-scopes-command": (
            request_body("own-scopes-command", live, "bev", COMMAND_NOT_GRANTED, kind="command", **own_grant),
            "PERMISSION_DENIED",
        ),
        "other-vehicle": (request_body("other-vehicle", live, "bev-2", GRANTED), "UNAUTHORIZED"),
        "other-connection": (request_body("other-connection", other, "bev", GRANTED), "UNAUTHORIZED"),
        "unknown-vehicle": (request_body("unknown-vehicle", live, "bev-9", GRANTED), "UNAUTHORIZED"),
        "revoked": (request_body("revoked", revoked, "bev", GRANTED, **own_grant), "UNAUTHORIZED"),
        "unknown": (request_body("unknown", "c-0000000000000000", "bev", GRANTED), "UNAUTHORIZED"),
        "upper-case": (request_body("upper-case", live.upper(), "bev", GRANTED), "UNAUTHORIZED"),
        "suffixed": (request_body("suffixed", live + ":x", "bev", GRANTED), "UNAUTHORIZED"),
        "key-like": (request_body("key-like", f"{keys.prefix}:conn:{live}", "bev", GRANTED), "UNAUTHORIZED"),
        "vehicle-as-connection": (request_body("vehicle-as-connection", "bev", "bev", GRANTED), "UNAUTHORIZED"),
        "glob": (request_body("glob", "*", "bev", GRANTED), "REJECTED"),
        "padded": (request_body("padded", f" {live}", "bev", GRANTED), "REJECTED"),
        "nul": (request_body("nul", f"{live}\x00", "bev", GRANTED), "REJECTED"),
        "no-connection": (request_body("no-connection", "", "bev", GRANTED), "REJECTED"),
        "null-connection": (request_body("null-connection", None, "bev", GRANTED), "REJECTED"),  # type: ignore[arg-type]
        "kind-swap": (request_body("kind-swap", live, "bev", GRANTED, kind="command"), "REJECTED"),
    }
    async with running_later():
        for data, _ in sent.values():
            await redis.xadd(keys.requests, {"data": data})
        assert await wait_until(lambda: stream_has(redis, keys.decisions, len(sent)), timeout=10)
        await asyncio.sleep(0.3)  # a duplicate would show up now
    got = await decisions_by_request(redis, keys)
    assert {rid: [d["outcome"] for d in got.get(rid, [])] for rid in sent} == {
        rid: [outcome] for rid, (_, outcome) in sent.items()
    }
    assert got["own-scopes"][0]["permission"] == "read_charge"
    assert got["own-scopes"][0]["error"]["resolution"]["type"] == "REAUTHENTICATE"


@contextlib.asynccontextmanager
async def worker_with_failing_registry(settings: Settings, failing: asyncio.Event) -> AsyncIterator[Counter[str]]:
    """A worker on its own client, whose registry reads (MGET) raise ConnectionError while `failing` is set.

    The stream commands keep working: the registry is unreachable, the requests stream is not.
    """
    client = connect(settings.redis_url)
    calls: Counter[str] = Counter()
    real_mget = client.mget

    async def mget(*args: Any, **kwargs: Any) -> Any:
        if failing.is_set():
            calls["failed"] += 1
            raise RedisConnectionError("registry unreachable (injected by the test)")
        calls["ok"] += 1
        return await real_mget(*args, **kwargs)

    client.mget = mget  # type: ignore[method-assign]
    gatekeeper = Gatekeeper(settings, client)
    task = asyncio.create_task(serve(gatekeeper))
    try:
        yield calls
    finally:
        gatekeeper.stop()
        await asyncio.wait_for(task, timeout=10)
        await client.aclose()


async def test_registry_outage_leaves_requests_pending_then_decides_each_once(
    redis: Redis, keys: Keys, grant: dict[str, str], gatekeeper_settings: Settings
) -> None:
    """Registry reads failing: no decision at all (entries wait, read or not); once back, each decided once,
    correctly."""
    settings = gatekeeper_settings
    live, revoked = grant["live"], grant["revoked"]
    sent = {f"ok-{i}": (request_body(f"ok-{i}", live, "bev", GRANTED), "ALLOWED") for i in range(20)}
    sent |= {
        "denied": (request_body("denied", live, "bev", NOT_GRANTED, scopes="read_charge"), "PERMISSION_DENIED"),
        "revoked": (request_body("revoked", revoked, "bev", GRANTED), "UNAUTHORIZED"),
        "unknown": (request_body("unknown", "c-unknown", "bev", GRANTED), "UNAUTHORIZED"),
    }
    failing = asyncio.Event()
    failing.set()
    async with worker_with_failing_registry(settings, failing) as calls:
        for data, _ in sent.values():
            await redis.xadd(keys.requests, {"data": data})
        loop = asyncio.get_running_loop()
        until = loop.time() + 1.5
        while loop.time() < until:  # through the outage: read, failed and retried, never decided
            assert await redis.xlen(keys.decisions) == 0
            await asyncio.sleep(0.05)
        assert calls["failed"] >= 3  # each batch in hand retried the registry
        failing.clear()
        assert await wait_until(lambda: stream_has(redis, keys.decisions, len(sent)), timeout=10)
        await asyncio.sleep(0.5)  # a duplicate from a later reclaim would show up now
    got = await decisions_by_request(redis, keys)
    assert {rid: [d["outcome"] for d in got.get(rid, [])] for rid in sent} == {
        rid: [outcome] for rid, (_, outcome) in sent.items()
    }
    assert (await redis.xpending(keys.requests, settings.group))["pending"] == 0
    assert await redis.xlen(keys.deadletter) == 0


async def test_registry_outage_past_the_retry_budget_dead_letters_nothing(
    redis: Redis, keys: Keys, grant: dict[str, str], gatekeeper_settings: Settings
) -> None:
    """An outage of 2 s, four times the redelivery budget (max_deliveries 2 after 200 ms idle), is not counted as
    deliveries: nothing is dead-lettered or decided meanwhile, and each request is decided once, ALLOWED, after."""
    settings = gatekeeper_settings
    sent = [request_body(f"ok-{i}", grant["live"], "bev", GRANTED) for i in range(10)]
    failing = asyncio.Event()
    failing.set()
    async with worker_with_failing_registry(settings, failing):
        for data in sent:
            await redis.xadd(keys.requests, {"data": data})
        await asyncio.sleep(2)
        assert await redis.xlen(keys.deadletter) == 0
        assert await redis.xlen(keys.decisions) == 0
        failing.clear()
        assert await wait_until(lambda: stream_has(redis, keys.decisions, len(sent)), timeout=10)
        await asyncio.sleep(0.5)  # a duplicate would show up now
    got = await decisions_by_request(redis, keys)
    assert {rid: [d["outcome"] for d in decisions] for rid, decisions in got.items()} == {
        f"ok-{i}": ["ALLOWED"] for i in range(10)
    }
    assert await redis.xlen(keys.deadletter) == 0
    assert (await redis.xpending(keys.requests, settings.group))["pending"] == 0
