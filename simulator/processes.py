"""Child processes of a load test: gatekeeper workers (`fleetgate gatekeeper run`) and producers."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys
from multiprocessing.context import SpawnProcess
from multiprocessing.queues import Queue
from typing import Any

from redis.asyncio import Redis

from services.registry import Keys
from simulator.errors import LoadTestError
from simulator.producer import ProducerJob, produce_in_process

# Producers are spawned, not forked: the parent runs an event loop and holds Redis connections.
_SPAWN = multiprocessing.get_context("spawn")


def start_gatekeepers(redis_url: str, prefix: str, workers: int) -> subprocess.Popen[bytes]:
    """`fleetgate gatekeeper run --workers N` on this prefix; its logs go to /dev/null (the load test reports)."""
    env = {**os.environ, "FLEETGATE_REDIS_URL": redis_url, "FLEETGATE_KEY_PREFIX": prefix}
    command = [sys.executable, "-m", "services.cli", "gatekeeper", "run", "--workers", str(workers)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def wait_for_heartbeats(redis: Redis, keys: Keys, workers: int, process: subprocess.Popen[bytes]) -> None:
    """Until `workers` gatekeepers beat (they have created the group and are reading), or fail if they died."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while len([k async for k in redis.scan_iter(match=keys.heartbeat_prefix + "*")]) < workers:
        if process.poll() is not None:
            raise LoadTestError(f"the gatekeeper exited with code {process.returncode} before it started")
        if loop.time() > deadline:
            raise LoadTestError("no gatekeeper heartbeat after 30 s")
        await asyncio.sleep(0.05)


async def stop_gatekeepers(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM: each worker finishes its batch in hand and exits."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.to_thread(process.wait, 30)
    except subprocess.TimeoutExpired:
        process.kill()


def new_queue() -> Queue[Any]:
    return _SPAWN.Queue()


def start_producer(job: ProducerJob, queue: Queue[Any]) -> SpawnProcess:
    process = _SPAWN.Process(target=produce_in_process, args=(job, queue), name=f"producer-{job.index}", daemon=True)
    process.start()
    return process
