"""The benchmark's server processes: started in their own sessions, their CPU time read from /proc, stopped in
reverse order; their logs kept beside the results."""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from services.local_redis import RedisServer


def descendants(pid: int) -> list[int]:
    """The process and every live process below it (Prism's node may fork)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            child = int(stat.parent.name)
            children.setdefault(int(stat.read_text().rsplit(")", 1)[1].split()[1]), []).append(child)
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


@dataclass
class Processes:
    """Every process the benchmark starts, stopped (SIGTERM, then SIGKILL) in reverse order by `stop_all`."""

    started: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    redis: RedisServer | None = None

    def start(self, name: str, command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as output:  # the child keeps its own copy of the descriptor
            # Its own session: a Ctrl-C at the terminal reaches this program only, which stops them in order.
            process = subprocess.Popen(
                command, env=env, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        self.started.append((name, process))
        return process

    def check(self) -> None:
        for name, process in self.started:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}")

    def stop_all(self) -> None:
        for _name, process in reversed(self.started):
            if process.poll() is None:
                process.terminate()
        for _name, process in reversed(self.started):
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self.started.clear()
        if self.redis is not None:
            self.redis.stop()
            self.redis = None


def wait_for_line(log: Path, pattern: str, process: subprocess.Popen[bytes], timeout: float = 60) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := re.search(pattern, log.read_text(errors="replace"))) is not None:
            return found
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}: {log.read_text()[-2000:]}")
        time.sleep(0.05)
    raise RuntimeError(f"{pattern!r} not seen in {log} within {timeout} s")


def keep_logs(directory: Path, into: Path) -> None:
    """The servers' logs (a 500's traceback is in serve.log), kept beside the results."""
    into.mkdir(parents=True, exist_ok=True)
    for log in directory.glob("*.log"):
        shutil.copy(log, into / log.name)
    print(f"logs in {into}")


@contextlib.contextmanager
def stopping_on_sigterm() -> Iterator[None]:
    """SIGTERM as Ctrl-C: the processes are stopped and the temporary directory removed either way."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
