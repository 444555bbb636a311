"""`fleetgate serve --with-workers` as a process: the HTTP face, a gatekeeper and the vehicles service in one
command, on a given Redis or on one it starts itself (with a test-mode app whose credentials it prints)."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from redis.asyncio import Redis

from devtools.builders import SIM_START, make_vehicle, request_json
from devtools.workers import read_decisions
from services.keyspace import Keys
from services.local_redis import RedisServer
from services.registry import ConnectService, Registry
from services.streams import Entry, split_id

FLEETGATE = str(Path(sys.executable).with_name("fleetgate"))
URL_LINE = re.compile(r"fleetgate serving on (http://\S+)")


class Served:
    """A running `fleetgate serve` and the lines it printed so far (read by a thread: a pipe's buffered reader
    may hold several lines at once, which a select() on the descriptor would never report)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 30.0) -> re.Match[str]:
        """The first printed line matching `pattern`, waiting for it up to `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.seen:
                if found := pattern.search(line):
                    return found
            try:
                self.seen.append(self.lines.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern.pattern!r} in {self.seen}") from None

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[Served] = []

    def start(*args: str, env: dict[str, str]) -> Served:
        process = subprocess.Popen(
            [FLEETGATE, "serve", "--with-workers", "--port", "0", *args],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(Served(process))
        return started[-1]

    yield start
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait(10)
        if served.process.stdout is not None:
            served.process.stdout.close()


def healthy(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
        return bool(json.loads(response.read()) == {"status": "ok"})


async def test_with_workers_decides_and_answers_on_the_given_redis(
    serve: Any, redis_server: RedisServer, keys: Keys, redis: Redis, registry: Registry
) -> None:
    """One command serves HTTP and runs a gatekeeper and the vehicles service: a request gets a decision and its
    answer, and serve's usage consumer counts it; SIGTERM stops them all cleanly (exit 0, heartbeats gone)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETGATE_")}
    served = serve(
        "--redis-url",
        redis_server.url,
        env=env | {"FLEETGATE_KEY_PREFIX": keys.prefix, "FLEETGATE_SIM_START": SIM_START},
    )
    url = served.wait_for(URL_LINE).group(1)
    assert healthy(url)
    await registry.add_vehicle(make_vehicle(vehicle_id="bev"))
    connection = await ConnectService(registry).authorize("bev", scope="read_battery")
    request = request_json("r-1", connection_id=connection.id, vehicle_id="bev", target="tractionbattery-stateofcharge")
    await redis.xadd(keys.requests, {"data": request})
    (decision,) = await read_decisions(redis, keys.decisions, 1, timeout=20)
    assert decision["outcome"] == "ALLOWED"
    (answer,) = await read_decisions(redis, keys.shard(0).responses, 1, timeout=20)
    # Answered, whatever the simulated vehicle's day (it may be out of coverage now: VEHICLE_STATE UNREACHABLE).
    assert (answer["request_id"], answer["decision_id"]) == ("r-1", decision["decision_id"])
    first_id = cast("list[Entry]", await redis.xrange(keys.decisions))[0][0]
    bucket = keys.shard(0).usage("default", split_id(first_id)[0] // 3_600_000)  # the hour of its entry id
    deadline = time.monotonic() + 20
    while await redis.hget(bucket, "o|ALLOWED") is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert await redis.hget(bucket, "a|read_battery") == b"1"  # its usage consumer counted it
    assert await redis.keys(f"{keys.heartbeat_prefix}*")
    assert served.stop() == 0
    assert not await redis.keys(f"{keys.heartbeat_prefix}*")
    assert not await redis.keys(f"{keys.vehicles_heartbeat_prefix}*")


@pytest.mark.redis  # starts its own private redis-server
def test_with_workers_and_no_redis_starts_one_and_prints_an_app(serve: Any) -> None:
    """Given no Redis, it starts a private one and prints a test-mode app's credentials with the default
    redirect URI; the app is usable at once (its config is published: the authorize page does not fail)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETGATE_")}
    served = serve(env=env)
    credentials = json.loads(served.wait_for(re.compile(r"a test-mode app .*?: (\{.*\})")).group(1))
    assert credentials["mode"] == "test"
    assert credentials["redirect_uris"] == ["http://localhost:8080/callback"]
    assert len(credentials["client_secret"]) == len(credentials["management_token"]) == 43
    url = served.wait_for(URL_LINE).group(1)
    assert healthy(url)
    assert served.stop() == 0
