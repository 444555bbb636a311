"""What an operator meets at the edges (issue 14): an evicting Redis is refused, a Redis URL without a scheme is one
line, SIGTERM while Redis is down is a clean exit, a long BLOCK is not a timeout, OOM-failing batches are counted.

Each test starts its own redis-server where it needs one with particular settings (marked by hand: no fixture).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import OutOfMemoryError

from devtools.builders import TEST_TIMINGS, request_json
from devtools.workers import FLEETGATE, fleetgate_env, start_worker_process
from services.gatekeeper.worker import Gatekeeper, serve
from services.keyspace import Keys
from services.local_redis import RedisServer, start_redis_server
from services.redis_client import connect
from services.settings import Settings
from services.streams import live_consumers
from tests.reliability.conftest import stop_process, wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.redis]
PREFIX = "edges"


def fleetgate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FLEETGATE, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def evicting(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server as managed services often configure one: it evicts least-recently-used keys."""
    server = start_redis_server(tmp_path, "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")
    yield server
    server.stop()


def test_commands_refuse_an_evicting_redis_in_one_line(evicting: RedisServer) -> None:
    """A CLI command on a Redis that evicts keys prints one line naming the setting and the fix, exits 2, writes
    nothing; FLEETGATE_ALLOW_EVICTION=true runs it anyway."""
    result = fleetgate(fleetgate_env(evicting.url, PREFIX), "access", "show")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "maxmemory-policy allkeys-lru" in line
    assert "noeviction" in line
    assert "FLEETGATE_ALLOW_EVICTION=true" in line
    allowed = fleetgate(fleetgate_env(evicting.url, PREFIX, allow_eviction=True), "access", "show")
    assert "maxmemory-policy" not in allowed.stderr


async def test_a_worker_refuses_an_evicting_redis_and_check_reports_it(evicting: RedisServer, tmp_path: Path) -> None:
    """The worker logs one line and exits 2 instead of deciding on a Redis that may evict its dedupe records;
    allowed, it runs, and `gatekeeper check` says which policy it accepted; not allowed, the check is unhealthy."""
    log = tmp_path / "worker.log"
    worker = start_worker_process(fleetgate_env(evicting.url, PREFIX), log)
    assert await asyncio.to_thread(worker.wait, 30) == 2
    assert "gatekeeper not started" in log.read_text()
    assert "maxmemory-policy allkeys-lru" in log.read_text()
    assert "Traceback" not in log.read_text()

    env = fleetgate_env(evicting.url, PREFIX, allow_eviction=True)
    worker = start_worker_process(env)
    redis = connect(evicting.url)
    try:
        assert await wait_until(lambda: _beating(redis), timeout=20)
        healthy = fleetgate(env, "gatekeeper", "check")
        assert healthy.returncode == 0, healthy.stderr
        assert "maxmemory-policy allkeys-lru (allowed)" in healthy.stdout
        unhealthy = fleetgate(fleetgate_env(evicting.url, PREFIX), "gatekeeper", "check")
        assert unhealthy.returncode == 1
        assert "evicts keys" in unhealthy.stderr
    finally:
        assert stop_process(worker) == 0
        await redis.aclose()


async def _beating(redis: Redis) -> bool:
    return bool(await live_consumers(redis, Keys(PREFIX)))


def test_a_redis_url_without_a_scheme_is_one_line() -> None:
    """`localhost:6390` (no redis://) is refused by every command with one line and exit 2, not a traceback."""
    for args in (["access", "show", "--redis-url", "localhost:6390"], ["gatekeeper", "run"]):
        env = {**fleetgate_env("redis://127.0.0.1:1/0", PREFIX), "FLEETGATE_REDIS_URL": "localhost:6390"}
        result = fleetgate(env, *args)
        assert result.returncode == 2, args
        (line,) = result.stderr.strip().splitlines()
        assert "must start with redis://" in line


async def test_sigterm_while_redis_is_down_exits_cleanly(tmp_path: Path) -> None:
    """A worker stopped while its Redis is away exits 0 with a warning that its heartbeat will expire, no traceback."""
    server = start_redis_server(tmp_path)
    log = tmp_path / "worker.log"
    worker = start_worker_process(fleetgate_env(server.url, PREFIX, block_ms=100), log)
    redis = connect(server.url)
    try:
        assert await wait_until(lambda: _beating(redis), timeout=20)
    finally:
        await redis.aclose()
        server.stop()
    await asyncio.sleep(0.5)  # the worker notices: its reads fail and back off
    assert stop_process(worker) == 0
    assert "could not delete the heartbeat" in log.read_text()
    assert "Traceback" not in log.read_text()


async def test_a_block_time_above_five_seconds_is_not_a_timeout(tmp_path: Path) -> None:
    """With FLEETGATE_BLOCK_MS=6000 an idle worker's reads wait 6 s: no timeout is logged (the socket timeout is
    above the block time)."""
    server = start_redis_server(tmp_path)
    log = tmp_path / "worker.log"
    worker = start_worker_process(fleetgate_env(server.url, PREFIX, block_ms=6000), log)
    try:
        await asyncio.sleep(8)
        assert stop_process(worker) == 0
    finally:
        server.stop()
    assert "imeout" not in log.read_text()
    assert "redis error" not in log.read_text()


async def test_batches_failing_on_oom_are_counted(tmp_path: Path) -> None:
    """A Redis out of memory (noeviction) refuses each commit: the worker retries and counts each failure by
    reason on /metrics (fleetgate_batch_errors_total{reason="OOM"}), instead of failing silently."""
    server = start_redis_server(tmp_path, "--maxmemory", "4mb", "--maxmemory-policy", "noeviction")
    redis = connect(server.url)
    keys = Keys(PREFIX)
    try:
        for n in range(20):
            await redis.xadd(keys.requests, {"data": request_json(f"r{n}")})
        await _fill(redis)
        before = REGISTRY.get_sample_value("fleetgate_batch_errors_total", {"reason": "OOM"}) or 0.0
        gatekeeper = Gatekeeper(Settings(redis_url=server.url, key_prefix=PREFIX, **TEST_TIMINGS), redis)
        task = asyncio.create_task(serve(gatekeeper))

        async def counted() -> bool:
            return (REGISTRY.get_sample_value("fleetgate_batch_errors_total", {"reason": "OOM"}) or 0.0) > before

        assert await wait_until(counted, timeout=10)
        assert int(await redis.xlen(keys.decisions)) == 0
        gatekeeper.stop()
        await asyncio.wait_for(task, timeout=10)
    finally:
        await redis.aclose()
        server.stop()


async def _fill(redis: Redis) -> None:
    """Write until the server answers OOM."""
    for n in range(10_000):
        try:
            await redis.set(f"{PREFIX}:ballast:{n}", b"x" * 100_000)
        except OutOfMemoryError:
            return
    raise AssertionError("the server never ran out of memory")


def test_audit_run_logs_like_the_other_services(redis_server: RedisServer, tmp_path: Path) -> None:
    """`fleetgate audit run` logs with time and level, as JSON lines with FLEETGATE_LOG_JSON (it used to print bare
    warnings)."""
    keys = Keys(f"{PREFIX}-audit-{tmp_path.name}")
    with SyncRedis.from_url(redis_server.url) as redis:
        redis.xadd(keys.decisions, {"data": b"not json"})
    env = {**fleetgate_env(redis_server.url, keys.prefix, log_json=True), "FLEETGATE_AUDIT_DB": str(tmp_path / "a.db")}
    result = fleetgate(env, "audit", "run", "--until-idle")
    assert result.returncode == 0, result.stderr
    logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any(entry["level"] == "warning" and "unreadable" in entry["message"] for entry in logged)
    assert all({"ts", "level", "logger"} <= set(entry) for entry in logged)
