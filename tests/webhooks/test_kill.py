"""kill -9 of a delivery worker process (`fleetgate webhooks run`) in the middle of a load: another worker takes
the shard over once the lease expires, and every event arrives; a duplicate is only a redelivery (same eventId)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from services.local_redis import RedisServer
from tests.webhooks.receiver import receiving
from tests.webhooks.test_faults import assert_all_once_in_order, until
from tests.webhooks.world import ODOMETER, WEBHOOK_TIMINGS, World, delivering

pytestmark = pytest.mark.redis
PER_VEHICLE = 15


def worker_process(redis_server: RedisServer, world: World) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "FLEETGATE_REDIS_URL": redis_server.url,
        "FLEETGATE_KEY_PREFIX": world.keys.prefix,
        "FLEETGATE_BLOCK_MS": "50",
        **{f"FLEETGATE_{name.upper()}": str(value) for name, value in WEBHOOK_TIMINGS.items()},
    }
    return subprocess.Popen(
        [sys.executable, "-m", "fleetgate", "webhooks", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_kill_9_of_a_worker_loses_nothing(world: World, redis_server: RedisServer) -> None:
    """A worker process killed with SIGKILL after some deliveries: a second worker (started at once, waiting for
    the lease) delivers the rest, every event arrives, each vehicle's in order."""
    async with receiving(world.amt) as receiver:
        receiver.hang(0.02)  # deliveries take a little while, so the kill lands mid-load
        webhook = await world.webhook(receiver.url, signals=[ODOMETER], vehicles=("bev", "ice"))
        emitted = await world.emit(*(world.event(webhook, v) for _ in range(PER_VEHICLE) for v in ("bev", "ice")))
        process = worker_process(redis_server, world)
        try:
            await until(lambda: len(receiver.events) >= 4, timeout_s=30)
            process.send_signal(signal.SIGKILL)
        finally:
            process.kill()
            await asyncio.to_thread(process.wait, 10)
        assert len(set(receiver.event_ids())) < len(emitted)
        summary = await world.redis.xpending(world.keys.shard(0).webhook_events, world.settings.webhook_group)
        assert summary["pending"] >= 1  # what the dead worker held: the next one must read it again
        async with delivering(world.settings, world.redis):
            await until(lambda: set(receiver.event_ids()) >= {e.event_id for e in emitted}, timeout_s=30)
            await world.settled()
    assert_all_once_in_order(receiver, emitted)
