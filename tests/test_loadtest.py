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

from services.gatekeeper.worker import Gatekeeper
from services.keyspace import Keys
from services.local_redis import RedisServer
from simulator.accounting import Accountant, Sent
from simulator.errors import LoadTestError
from simulator.loadtest import LoadTestOptions, Progress, run_load_test, set_up, write_report
from simulator.owners import OwnerBehaviour
from simulator.producer import ProducerDone, ProducerJob, produce
from simulator.readers import account_decisions
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
