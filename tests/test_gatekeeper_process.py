"""The gatekeeper as a process (`fleetgate gatekeeper run`): SIGTERM and kill -9, on one Redis and on a cluster."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from services.local_redis import free_port
from tests.deployment import Deployment

FLEETGATE = str(Path(sys.executable).with_name("fleetgate"))


def start_worker(deployment: Deployment, **settings: str) -> subprocess.Popen[bytes]:
    env = deployment.environment(block_ms=100, **settings)
    return subprocess.Popen(
        [FLEETGATE, "gatekeeper", "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def publish(deployment: Deployment, count: int, first: int = 0) -> None:
    """Publish requests r<first> .. r<first + count - 1>, from 97 vehicles (so over every shard)."""
    for start in range(first, first + count, 1000):
        await deployment.publish_many(
            {
                "request_id": f"r{n}",
                "connection_id": "c-unknown",
                "vehicle_id": f"v-{n % 97}",
                "kind": "signal",
                "target": "odometer-traveleddistance",
                "issued_at": "2026-11-28T12:00:00Z",
            }
            for n in range(start, min(start + 1000, first + count))
        )


async def wait_for_decisions(deployment: Deployment, count: int, timeout: float) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (have := await deployment.decision_count()) < count and loop.time() < deadline:
        await asyncio.sleep(0.05)
    return have


async def test_sigterm_finishes_the_batch_and_leaves_nothing_pending(deployment: Deployment) -> None:
    """SIGTERM mid-stream: the worker exits 0, every entry it read is decided and acknowledged."""
    worker = start_worker(deployment, batch_size="50")
    try:
        await publish(deployment, 20_000)
        assert await wait_for_decisions(deployment, 500, timeout=30) >= 500
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.wait, 30) == 0
    finally:
        worker.kill()
    groups = await deployment.groups()
    assert len(groups) == deployment.keys.shards
    assert sum(group["pending"] for group in groups) == 0
    decided = await deployment.decided_request_ids()
    assert len(decided) == sum(group["entries-read"] for group in groups)  # everything it read was decided, once
    assert set(decided.values()) == {1}


async def test_kill_9_mid_run_loses_and_duplicates_nothing(deployment: Deployment) -> None:
    """kill -9 a worker with a batch in hand, start another: each request decided exactly once, none pending."""
    timings = {"min_idle_ms": "500", "reclaim_interval_ms": "200", "batch_size": "100"}
    first = start_worker(deployment, **timings)
    await publish(deployment, 2000)
    published = 2000
    assert await wait_for_decisions(deployment, 1000, timeout=30) >= 1000  # it is up and reading
    # Keep a backlog coming and freeze the worker until it is caught with a batch read but not yet
    # decided; kill -9 then leaves those entries pending, for the second worker to reclaim.
    for _ in range(200):
        await publish(deployment, 1000, first=published)
        published += 1000
        first.send_signal(signal.SIGSTOP)
        await asyncio.sleep(0.05)  # let Redis finish a script the worker sent just before it froze
        if await deployment.pending() > 0:
            break
        first.send_signal(signal.SIGCONT)
    first.kill()
    await asyncio.to_thread(first.wait, 10)
    assert await deployment.pending() > 0
    await publish(deployment, 5000, first=published)  # and more after the crash
    published += 5000
    second = start_worker(deployment, **timings)
    try:
        assert await wait_for_decisions(deployment, published, timeout=60) == published
        await asyncio.sleep(1.0)  # anything late or duplicated would show up now
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.to_thread(second.wait, 30)
    decided = await deployment.decided_request_ids()
    assert len(decided) == published
    assert set(decided.values()) == {1}
    assert await deployment.pending() == 0
    assert await deployment.dead_letter_count() == 0


@pytest.mark.parametrize("deployment", ["redis"], indirect=True)  # metrics do not depend on where Redis runs
async def test_metrics_endpoint_counts_the_decisions(deployment: Deployment) -> None:
    """With FLEETGATE_METRICS_PORT set, /metrics serves the worker's counters over HTTP."""
    port = free_port()
    worker = start_worker(deployment, metrics_port=str(port))
    try:
        await publish(deployment, 300)
        assert await wait_for_decisions(deployment, 300, timeout=30) == 300
        url = f"http://127.0.0.1:{port}/metrics"
        text = (await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())).decode()
    finally:
        worker.send_signal(signal.SIGTERM)
        await asyncio.to_thread(worker.wait, 30)
    # Every request names an unknown connection: 300 UNAUTHORIZED decisions.
    assert 'fleetgate_decisions_total{outcome="UNAUTHORIZED"} 300.0' in text
    assert "fleetgate_batch_size_sum 300.0" in text
