"""A consumer that stops for a while loses nothing (issue 14, item 1): the decisions' retention waits for every
consumer group; past the hard cap what is trimmed unread is counted, logged, and every fleetgate consumer reports
the gap and exits 1."""

from __future__ import annotations

import asyncio
import subprocess
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from devtools.workers import FLEETGATE, fleetgate_env, publish, serving
from services.gatekeeper.worker import Gatekeeper, serve
from services.keyspace import Keys
from services.local_redis import RedisServer
from services.settings import Settings
from services.streams import ensure_group
from tests.reliability.conftest import stream_has, wait_until

pytestmark = [pytest.mark.reliability]

REQUESTS = 20_000


def fleetgate(server: RedisServer, keys: Keys, *args: str) -> subprocess.CompletedProcess[str]:
    env = fleetgate_env(server.url, keys.prefix)
    return subprocess.run([FLEETGATE, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def worker(
    redis: Redis, server: RedisServer, keys: Keys, maxlen: int, cap: int = 0
) -> AbstractAsyncContextManager[Gatekeeper]:
    """A gatekeeper that trims every 100 ms, with this retention and hard cap."""
    settings = Settings(redis_url=server.url, key_prefix=keys.prefix, block_ms=50, trim_interval_ms=100)
    retention = {"decisions_maxlen": maxlen, "decisions_hard_cap": cap}
    return serving(Gatekeeper(settings.model_copy(update=retention), redis), serve)


def trimmed_unread(group: str) -> float:
    return REGISTRY.get_sample_value("fleetgate_trimmed_unread_total", {"stream": "decisions", "group": group}) or 0


@pytest.mark.timeout(180)
async def test_an_audit_stopped_while_20000_are_decided_stores_them_all(
    redis: Redis, keys: Keys, redis_server: RedisServer, tmp_path: Path
) -> None:
    """Retention 5,000: the audit stops after 200 decisions, 20,000 more are decided and trimmed around; when it
    runs again it stores the 20,000 it had not read, misses none; then the stream shrinks back to the retention."""
    db = str(tmp_path / "audit.db")
    async with worker(redis, redis_server, keys, maxlen=5_000):
        await publish(redis, keys, 0, 200)
        assert await wait_until(lambda: stream_has(redis, keys.decisions, 200), timeout=20)
        first = await asyncio.to_thread(fleetgate, redis_server, keys, "audit", "run", "--db", db, "--until-idle")
        assert first.returncode == 0, first.stderr
        await publish(redis, keys, 200, REQUESTS)
        assert await wait_until(lambda: _decided(redis, keys, REQUESTS + 200), timeout=60)
        await asyncio.sleep(0.5)  # several trims pass while the audit is stopped
        held = await redis.xlen(keys.decisions)
        again = await asyncio.to_thread(fleetgate, redis_server, keys, "audit", "run", "--db", db, "--until-idle")
        assert again.returncode == 0, again.stderr
        assert '"decisions_added": 20000' in again.stdout
        assert '"missed": 0' in again.stdout
        assert await wait_until(lambda: _at_most(redis, keys.decisions, 5_000), timeout=10)
    assert held == REQUESTS  # the 200 it had acknowledged went; nothing it had not read did


@pytest.mark.timeout(180)
async def test_past_the_hard_cap_the_loss_is_counted_and_every_consumer_reports_it(
    redis: Redis, keys: Keys, redis_server: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Hard cap 5,000 while the audit and a `tail --group` consumer are stopped and 20,000 are decided: the
    gatekeeper counts the exact number each group lost on /metrics and logs it; `audit run --until-idle` and
    `tail --group` report the same number and exit 1; the next runs have nothing more to report."""
    db = str(tmp_path / "audit.db")
    tail = ("tail", "--group", "billing", "--json", "--count")
    await ensure_group(redis, keys.decisions, "billing", "0")  # as `tail --group billing --from-start` creates it
    before = trimmed_unread("audit"), trimmed_unread("billing")
    async with worker(redis, redis_server, keys, maxlen=1_000, cap=5_000):
        first = await asyncio.to_thread(fleetgate, redis_server, keys, "audit", "run", "--db", db, "--until-idle")
        assert first.returncode == 0, first.stderr
        await publish(redis, keys, 0, REQUESTS)
        assert await wait_until(lambda: _decided(redis, keys, REQUESTS), timeout=60)
        assert await wait_until(lambda: _at_most(redis, keys.decisions, 5_000), timeout=10)
    lost = {group: trimmed_unread(group) - was for group, was in zip(("audit", "billing"), before, strict=True)}
    assert lost["audit"] == lost["billing"] == REQUESTS - 5_000
    assert "trimmed before group audit read them" in caplog.text

    audit = await asyncio.to_thread(fleetgate, redis_server, keys, "audit", "run", "--db", db, "--until-idle")
    assert audit.returncode == 1
    assert '"missed": 15000' in audit.stdout
    assert "the audit has a gap: 15000 entries" in audit.stderr
    assert '"decisions_added": 5000' in audit.stdout
    following = await asyncio.to_thread(fleetgate, redis_server, keys, *tail, "5000")
    assert following.returncode == 1
    assert "15000 decisions" in following.stderr
    assert len(following.stdout.splitlines()) == 5_000
    again = await asyncio.to_thread(fleetgate, redis_server, keys, "audit", "run", "--db", db, "--until-idle")
    assert again.returncode == 0, again.stderr  # each gap is reported once
    assert '"missed": 0' in again.stdout


async def _decided(redis: Redis, keys: Keys, count: int) -> bool:
    entries = await redis.xinfo_stream(keys.decisions)
    return int(entries["entries-added"]) >= count


async def _at_most(redis: Redis, stream: str, count: int) -> bool:
    return int(await redis.xlen(stream)) <= count
