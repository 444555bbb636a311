"""The load test end to end on a real Redis (and a cluster): every request accounted for, and tampering is caught."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import cast

import pytest
from redis.asyncio import Redis

from fleetgate.loadtest_view import left_behind
from schemas.grant import ConnectionFilters, FilterPowertrain
from services.gatekeeper.worker import Gatekeeper
from services.keyspace import Keys
from services.local_redis import RedisServer
from services.redis_client import Client
from services.registry import Registry
from simulator.accounting import Accountant, Sent
from simulator.cleanup import LOADTEST_APP_ID, remove_leftovers
from simulator.errors import LoadTestError
from simulator.fleet import generate_fleet
from simulator.loadtest import LoadTestOptions, Progress, run_load_test, set_up, write_report
from simulator.owners import OwnerBehaviour, default_app_config
from simulator.producer import ProducerDone, ProducerJob, produce
from simulator.readers import account_decisions
from simulator.report import processes_text
from simulator.workload import WorkloadMix
from tests.deployment import Deployment

Runner = Callable[[], AbstractAsyncContextManager[Gatekeeper]]

# Every kind of workload item, often enough to show up in a short run.
EVERY_KIND = WorkloadMix(
    command_share=0.15,
    not_granted_share=0.1,
    not_capable_share=0.1,
    unknown_connection_share=0.05,
    malformed_share=0.05,
    duplicate_share=0.05,
)
CHURN = OwnerBehaviour(uncheck=0.3, revoke=0.1, reauth=0.1)


async def test_a_short_run_accounts_for_every_request(deployment: Deployment, tmp_path: Path) -> None:
    """A gatekeeper process, the vehicles service, a spawned producer, owners revoking and re-authorizing: no
    decision or response lost, doubled or wrong, and reads after locks and unlocks say what those set (on one
    Redis, and on the cluster with six shards)."""
    options = LoadTestOptions(
        redis_url=deployment.url,
        prefix=deployment.keys.prefix,
        shards=deployment.keys.shards,
        redis_cluster=deployment.cluster,
        vehicles=300,
        rate=400,
        duration_s=4,
        seed=11,
        grace_s=10,
        owners=CHURN,
        workload=EVERY_KIND,
    )
    phases: list[str] = []
    report = await run_load_test(options, lambda p: phases.append(p.phase))
    accounting = report.accounting
    assert accounting.clean, accounting.examples
    assert accounting.requests == accounting.decided > 1200
    assert set(report.outcomes) == {"ALLOWED", "PERMISSION_DENIED", "VEHICLE_NOT_CAPABLE", "UNAUTHORIZED", "REJECTED"}
    assert report.throughput.duplicates_sent > 0
    assert report.throughput.rate_held
    assert report.latency_ms.count == accounting.decided
    assert 0 < report.latency_ms.p50 <= report.latency_ms.p99 <= report.latency_ms.max
    assert sum(s.sent for s in report.timeline) == accounting.requests
    assert {"BEV", "ICE"} <= set(report.by_powertrain)
    assert report.not_capable_by_target["internalcombustionengine-fuellevel"].not_capable > 0  # asked of BEVs
    assert "load" in phases

    answers = report.responses
    assert answers.accounting.clean, answers.accounting.examples
    assert answers.accounting.allowed == answers.accounting.answered == report.outcomes["ALLOWED"]
    assert sum(answers.outcomes.values()) == answers.latency_ms.count == answers.accounting.answered
    assert answers.outcomes["SUCCESS"] > 0
    assert set(answers.by_powertrain) <= set(report.by_powertrain)
    assert answers.accounting.effects_checked > 0
    assert 0 < answers.latency_ms.p50 <= answers.latency_ms.p99 <= answers.latency_ms.max
    assert sum(s.answered for s in report.timeline) == answers.accounting.answered
    assert report.clean

    data, page = write_report(report, tmp_path / "report")
    written = json.loads(data.read_text())
    assert written["accounting"] == {**accounting.model_dump(), "examples": []}
    assert written["throughput"]["sent"] == accounting.requests
    assert written["responses"]["accounting"] == {**answers.accounting.model_dump(), "examples": []}
    assert written["responses"]["latency_ms"]["count"] == answers.accounting.answered
    assert page.read_text().count("<svg") == 7


async def _produce_and_decide(redis: Redis, keys: Keys, redis_server: RedisServer, running_later: Runner) -> list[Sent]:
    options = LoadTestOptions(redis_server.url, keys.prefix, vehicles=100, rate=300, duration_s=1, seed=3)
    world = await set_up(redis, keys, options)
    job = ProducerJob(redis_server.url, keys.prefix, 1, False, 0, 300, 1.0, 3, "t", world, EVERY_KIND)
    sent: list[Sent] = []

    def collect(item: list[Sent] | ProducerDone) -> None:
        if isinstance(item, list):
            sent.extend(item)

    async with running_later():
        await produce(job, collect, started_at=time.time())
        deadline = asyncio.get_running_loop().time() + 10
        while await redis.xlen(keys.decisions) < len(sent) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
    return sent


async def _account(redis: Redis, keys: Keys, sent: list[Sent]) -> Accountant:
    world = await set_up(redis, keys, LoadTestOptions("", keys.prefix, vehicles=100, rate=1, duration_s=1, seed=3))
    accountant = Accountant(world, started_at=sent[0][1])
    accountant.on_sent(sent)
    entries = cast("list[tuple[bytes, dict[bytes, bytes]]]", await redis.xrange(keys.decisions))
    account_decisions(entries, accountant, time.time(), {})
    return accountant


async def test_accounting_catches_a_dropped_a_doubled_and_a_changed_decision(
    redis: Redis, keys: Keys, redis_server: RedisServer, running_later: Runner
) -> None:
    """Against the real decisions stream, tampered: one deleted, one published twice, one with another outcome."""
    sent = await _produce_and_decide(redis, keys, redis_server, running_later)
    assert (await _account(redis, keys, sent)).accounting().clean

    entries = cast("list[tuple[bytes, dict[bytes, bytes]]]", await redis.xrange(keys.decisions, count=3))
    (dropped, _), (_, doubled), (changed_id, changed) = entries
    await redis.xdel(keys.decisions, dropped, changed_id)
    await redis.xadd(keys.decisions, {"data": doubled[b"data"]})
    decision = json.loads(changed[b"data"])
    decision["outcome"] = "ALLOWED" if decision["outcome"] != "ALLOWED" else "PERMISSION_DENIED"
    await redis.xadd(keys.decisions, {"data": json.dumps(decision)})

    accounting = (await _account(redis, keys, sent)).accounting()
    assert (accounting.lost, accounting.duplicated, accounting.mismatched) == (1, 1, 1)
    assert accounting.examples[0].request_id == decision["request_id"]
    assert not accounting.clean


def test_progress_lag_is_sent_minus_decided() -> None:
    """The live display's lag never goes negative (decisions can be read before the producer reports)."""
    assert Progress("load", sent=10, decided=7).lag == 3
    assert Progress("load", sent=5, decided=9).lag == 0


async def test_without_a_vehicles_service_the_external_flag_refuses_to_run(
    redis: Redis, keys: Keys, redis_server: RedisServer
) -> None:
    """Told the vehicles run elsewhere while none beats on the prefix, the load test stops before any load, saying
    so (the gatekeeper's heartbeat is there)."""
    await redis.set(keys.heartbeat("elsewhere-1"), "1", ex=30)
    options = LoadTestOptions(
        redis_server.url, keys.prefix, vehicles=20, rate=10, duration_s=1, gatekeepers=0, vehicle_services=0
    )
    with pytest.raises(LoadTestError, match="no vehicles service is running on prefix"):
        await run_load_test(options, lambda _progress: None)
    assert await redis.exists(keys.requests) == 0


async def _key_types(client: Client, prefix: str) -> dict[str, str]:
    """Every key under the prefix (on every node of a cluster) and its type."""
    found = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
    return {_text(key): _text(await client.type(key)) for key in found}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def test_a_run_on_someone_elses_registry_is_its_own_app_and_cleans_up(deployment: Deployment) -> None:
    """With the default app's config and filters refusing most of the fleet, a load test changes neither, connects
    all its own vehicles (and says so), never touches `sim-` vehicles, and with cleanup leaves no key behind but the
    streams (on one Redis, and on the cluster with six shards)."""
    client, keys = deployment.client, deployment.keys
    registry = Registry(client, keys)
    await registry.add_vehicles(generate_fleet(3, seed=1))  # `fleetgate simulate fleet`'s, ids sim-...
    config = await registry.publish_config(default_app_config())
    refusing = ConnectionFilters(powertrains=frozenset({FilterPowertrain.BEV}), allow_unknown=False)
    await registry.set_filters(refusing)
    before = await _key_types(client, keys.prefix)
    options = LoadTestOptions(
        redis_url=deployment.url,
        prefix=keys.prefix,
        shards=keys.shards,
        redis_cluster=deployment.cluster,
        vehicles=120,
        rate=150,
        duration_s=2,
        seed=5,
        grace_s=10,
        owners=CHURN,
        cleanup=True,
    )
    report = await run_load_test(options, lambda _progress: None)
    assert report.clean, report.accounting.examples
    assert (report.run.vehicles, report.run.connected, report.run.app_id) == (120, 120, LOADTEST_APP_ID)
    assert report.run.cleaned_up
    assert (await registry.config()).version == config.version
    assert await registry.filters() == refusing
    after = await _key_types(client, keys.prefix)
    assert {key: kind for key, kind in after.items() if kind != "stream"} == before
    assert not await client.zscore(keys.apps, LOADTEST_APP_ID)


async def test_running_services_are_reported_and_leftovers_removed(
    redis: Redis, keys: Keys, redis_server: RedisServer
) -> None:
    """A gatekeeper already beating on the prefix is warned about and reported as sharing the load (the run still
    waits for its own); without cleanup the run leaves its app and fleet, which `remove_leftovers` deletes (all but
    the streams, the dedupe records, which expire, and the vehicles' clock, which a later vehicles service reuses)."""
    before = await _key_types(redis, keys.prefix)
    await redis.set(keys.heartbeat("elsewhere-1"), "1", ex=60)
    warnings: list[str] = []
    options = LoadTestOptions(redis_server.url, keys.prefix, vehicles=40, rate=80, duration_s=1, seed=2, owners=CHURN)
    report = await run_load_test(options, lambda _progress: None, warnings.append)
    assert report.clean, report.accounting.examples
    assert (report.run.gatekeepers, report.run.gatekeepers_found, report.run.vehicle_services_found) == (1, 1, 0)
    assert len(warnings) == 1
    assert "1 gatekeeper worker(s) already running" in warnings[0]
    assert processes_text(report.run.gatekeepers, report.run.gatekeepers_found) == "1 started + 1 found running"
    assert "fleetgate loadtest --remove-only" in left_behind(options, report)
    await redis.delete(keys.heartbeat("elsewhere-1"))

    registry = Registry(redis, keys)
    assert await registry.config(app_id=LOADTEST_APP_ID)
    removed = await remove_leftovers(registry)
    assert (removed.vehicles, removed.connections) == (40, 40)
    after = await _key_types(redis, keys.prefix)
    expiring = (":dedupe:", ":decided:")
    left = {k for k, kind in after.items() if kind != "stream" and not any(e in k for e in expiring)}
    left.discard(keys.vehicles_clock)
    assert left == set(before)


def test_who_did_the_work_is_said_in_full() -> None:
    """The report names processes started and found running, never one process for work others shared."""
    assert processes_text(1, 0) == "1 started"
    assert processes_text(2, 3) == "2 started + 3 found running"
    assert processes_text(0, 2) == "2 found running (external)"
