"""Child processes of a load test: gatekeeper workers (`python -m services.gatekeeper`), the vehicles service
(`python -m simulator.vehicles`) and producers."""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import subprocess
import sys
from collections.abc import Collection, Sequence
from multiprocessing.context import SpawnProcess
from multiprocessing.queues import Queue
from typing import Any

from services.gatekeeper.processes import worker_command
from services.keyspace import Keys
from services.redis_client import Client
from services.settings import Settings
from services.streams import live_consumers
from simulator.errors import LoadTestError
from simulator.producer import ProducerJob, produce_in_process

# Producers are spawned, not forked: the parent runs an event loop and holds Redis connections.
_SPAWN = multiprocessing.get_context("spawn")


def start_gatekeepers(settings: Settings, workers: int) -> subprocess.Popen[bytes]:
    """`python -m services.gatekeeper --workers N` with these settings; its logs go to /dev/null (the load test
    reports)."""
    # Its own session: a Ctrl-C at the terminal interrupts the load test, which then stops the workers in order.
    return subprocess.Popen(
        worker_command(workers),
        env=settings.environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def start_vehicles(settings: Settings) -> subprocess.Popen[bytes]:
    """`python -m simulator.vehicles` with these settings (no metrics server: its port would be the gatekeeper's);
    logs to /dev/null, like the gatekeeper's."""
    quiet = settings.model_copy(update={"metrics_port": 0})
    return subprocess.Popen(
        [sys.executable, "-m", "simulator.vehicles"],
        env=quiet.environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


async def wait_for_heartbeats(
    redis: Client,
    keys: Keys,
    count: int,
    processes: Sequence[subprocess.Popen[bytes]],
    *,
    vehicles: bool = False,
    besides: Collection[str] = frozenset(),
) -> None:
    """Until `count` gatekeepers (or vehicles services) beat, not counting those named in `besides` (found running
    before these started): they have created their group and are reading; or fail if the process died."""
    name = "vehicles service" if vehicles else "gatekeeper"
    prefix = keys.vehicles_heartbeat_prefix if vehicles else keys.heartbeat_prefix
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while len(set(await live_consumers(redis, keys, prefix=prefix)) - set(besides)) < count:
        for process in processes:
            if process.poll() is not None:
                raise LoadTestError(f"the {name} exited with code {process.returncode} before it started")
        if loop.time() > deadline:
            raise LoadTestError(f"no {name} heartbeat after 30 s")
        await asyncio.sleep(0.05)


async def stop_service(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM: each worker (or vehicles service) finishes its batch in hand and exits."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.to_thread(process.wait, 30)
    except subprocess.TimeoutExpired:
        process.kill()


class Producers:
    """Producer processes, their report queue, and the shared start: go, and the load's t = 0."""

    def __init__(self, jobs: list[ProducerJob]) -> None:
        self.queue: Queue[Any] = _SPAWN.Queue()
        self._go = _SPAWN.Event()
        self._started_at = _SPAWN.Value("d", 0.0)
        self._stopping = _SPAWN.Event()
        self.processes: list[SpawnProcess] = []
        for job in jobs:
            process = _SPAWN.Process(
                target=produce_in_process,
                args=(job, self.queue, self._go, self._started_at, self._stopping),
                name=f"producer-{job.index}",
                daemon=True,
            )
            process.start()
            self.processes.append(process)

    def start(self, started_at: float) -> None:
        self._started_at.value = started_at
        self._go.set()

    def failed(self) -> bool:
        return any(not p.is_alive() and p.exitcode not in (0, None) for p in self.processes)

    def stop(self) -> None:
        """Producers that finished have exited; one still running (the load was interrupted) is terminated."""
        self._stopping.set()
        self._go.set()
        for process in self.processes:
            process.join(timeout=1)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
