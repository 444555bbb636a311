"""`fleetgate demo` runs to completion on each kind of Redis it can use, and accounts for every request and for
every response of the vehicles."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.keyspace import Keys
from services.local_redis import RedisServer
from services.registry import Registry
from simulator.owners import default_app_config

FLEETGATE = str(Path(sys.executable).with_name("fleetgate"))
SHORT = ["--duration", "2", "--vehicles", "150"]


def run_demo(*args: str, path: str | None = None, prefix: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLEETGATE_")}
    env["COLUMNS"] = "200"  # the summary's rows unwrapped
    if path is not None:
        env["PATH"] = path
    if prefix is not None:
        env["FLEETGATE_KEY_PREFIX"] = prefix
    return subprocess.run(
        [FLEETGATE, "demo", *SHORT, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def assert_clean_run(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Outcomes by powertrain" in result.stdout
    assert '"outcome": "PERMISSION_DENIED"' in result.stdout  # a sample decision with its Smartcar-shaped error
    assert '"statusCode": 403' in result.stdout
    assert "OK  requests" in result.stdout
    assert "lost 0  duplicated 0" in result.stdout
    assert "What the vehicles answered" in result.stdout
    assert re.search(r"│ SUCCESS +│ +[1-9]", result.stdout)  # a row of response codes, by powertrain
    answered = re.search(r"OK  ALLOWED ([\d,]+)  answered ([\d,]+)  lost 0  duplicated 0  mismatched 0", result.stdout)
    assert answered is not None, result.stdout
    assert answered[1] == answered[2]
    assert "violated 0" in result.stdout
    assert "e2e ms" in result.stdout


@pytest.mark.redis  # the demo starts redis-server itself (no fixture: tests/conftest.py cannot see it)
def test_demo_starts_a_private_redis_server_when_the_binary_is_there() -> None:
    """With redis-server on PATH, the demo starts its own on a free port and says so."""
    result = run_demo()
    assert "a private redis-server on port" in result.stdout
    assert_clean_run(result)


def test_demo_runs_on_the_embedded_server_without_redis_server() -> None:
    """With no redis-server on PATH, the demo falls back to the embedded Redis-protocol server."""
    result = run_demo(path=str(Path(sys.executable).parent))
    assert "embedded Redis-protocol server" in result.stdout
    assert "no redis-server on PATH" in result.stdout
    assert_clean_run(result)


async def test_demo_on_a_given_redis_leaves_no_keys_behind(redis: Redis, redis_server: RedisServer) -> None:
    """--redis-url uses that server as an app of its own, leaves the default app's config alone, and deletes what it
    created afterwards (like `loadtest --cleanup`): only the streams stay."""
    registry = Registry(redis, Keys("demo-given"))
    config = await registry.publish_config(default_app_config())
    result = run_demo("--redis-url", redis_server.url, prefix="demo-given")
    assert f"127.0.0.1:{redis_server.port}" in result.stdout
    assert_clean_run(result)
    assert "cleaned up: app fleetgate-loadtest" in result.stdout
    assert (await registry.config()).version == config.version
    left = {key async for key in redis.scan_iter(match="demo-given:*")}
    assert {key for key in left if await redis.type(key) != b"stream"} == {
        key.encode()
        for key in (
            "demo-given:access:config:1",
            "demo-given:access:current",
            "demo-given:access:version",
            "demo-given:access:published",
        )
    }


@pytest.mark.redis  # the demo starts redis-server itself when it is on PATH
def test_ctrl_c_stops_the_demo_cleanly(tmp_path: Path) -> None:
    """SIGINT to the demo's whole process group (a terminal's Ctrl-C) mid-load: exit 130, no traceback."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLEETGATE_")}
    stderr_path = tmp_path / "stderr"
    with stderr_path.open("wb") as stderr:
        demo = subprocess.Popen(
            [FLEETGATE, "demo", "--duration", "30", "--vehicles", "100"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while b"load " not in stderr_path.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.1)
        os.killpg(demo.pid, signal.SIGINT)
        stdout, _ = demo.communicate(timeout=60)
    assert demo.returncode == 130
    assert b"interrupted" in stdout
    assert b"Traceback" not in stderr_path.read_bytes()
