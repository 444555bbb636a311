"""Gatekeeper worker processes: one in this process, or several children supervised (`--workers N`)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from types import FrameType

from services.gatekeeper.app import WorkerStatus, create_app
from services.settings import Settings

WORKER_MODULE = "services.gatekeeper"
"""`python -m services.gatekeeper --workers N` runs `run_workers` with the settings of the environment."""


def run_workers(settings: Settings, workers: int = 1) -> int:
    """Run `workers` gatekeeper workers until SIGTERM or Ctrl-C; returns the exit code (the worst child's)."""
    if workers == 1:
        status = WorkerStatus()
        asyncio.run(create_app(settings, status).run())
        return status.exit_code
    return _supervise(settings, workers)


def worker_command(workers: int) -> list[str]:
    """The command line of a gatekeeper process with `workers` workers; its settings come from its environment."""
    return [sys.executable, "-m", WORKER_MODULE, "--workers", str(workers)]


def _supervise(settings: Settings, workers: int) -> int:
    """Start `workers` single-worker processes, forward SIGTERM/SIGINT to them, and wait for all."""
    children = [subprocess.Popen(worker_command(1), env=settings.environment()) for _ in range(workers)]

    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return max(child.wait() for child in children)
