"""`fleetgate tail` on a real redis-server: filters, start position, groups, JSON, bad entries; plain redis-cli."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis
from typer.testing import CliRunner, Result

from schemas.messages import DecisionMessage
from schemas.problems import Outcome, permission_denied
from services.cli import app
from services.gatekeeper.worker import Gatekeeper
from services.local_redis import RedisServer
from services.registry import Keys

pytestmark = pytest.mark.redis
Runner = Callable[[], AbstractAsyncContextManager[Gatekeeper]]
Cli = Callable[..., Result]


def request_data(request_id: str, connection_id: str, target: str, vehicle_id: str = "bev") -> bytes:
    """A request as any client would XADD it."""
    body = {
        "request_id": request_id,
        "connection_id": connection_id,
        "vehicle_id": vehicle_id,
        "kind": "signal",
        "target": target,
        "issued_at": "2026-11-28T12:00:00Z",
    }
    return json.dumps(body).encode()


def decision_data(request_id: str, outcome: Outcome = Outcome.ALLOWED, vehicle_id: str = "veh-1") -> bytes:
    """A decision as the gatekeeper publishes it, for tests that write the decisions stream directly."""
    denied = outcome is Outcome.PERMISSION_DENIED
    return DecisionMessage(
        decision_id=f"d-{request_id}",
        request_id=request_id,
        connection_id="conn-1",
        vehicle_id=vehicle_id,
        kind="signal",
        target="charge-ischarging",
        outcome=outcome,
        permission="read_charge",
        error=permission_denied("read_charge", "charge-ischarging").for_request(request_id) if denied else None,
        decided_at=datetime.now(UTC),
    ).encode()


async def wait_for_decisions(redis: Redis, keys: Keys, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The decisions on the stream once there are at least `count` (all of them, decoded)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        entries = await redis.xrange(keys.decisions) or []
        if len(entries) >= count or asyncio.get_running_loop().time() > deadline:
            return [json.loads((fields or {})[b"data"]) for _, fields in entries]
        await asyncio.sleep(0.02)


@pytest.fixture
def cli(redis_server: RedisServer, keys: Keys) -> Cli:
    """Run `fleetgate ...` against the test server under this test's key prefix (call it in a thread from async)."""

    def invoke(*args: str) -> Result:
        env = {"FLEETGATE_REDIS_URL": redis_server.url, "FLEETGATE_KEY_PREFIX": keys.prefix}
        return CliRunner().invoke(app, list(args), env=env)

    return invoke


@pytest.fixture
async def decided(redis: Redis, keys: Keys, connection_id: str, running_later: Runner) -> str:
    """Real decisions of every kind, then one ALLOWED `last` for `bev` after them all; yields the connection id."""
    sent = [
        ("allowed", connection_id, "tractionbattery-stateofcharge", "bev"),
        ("denied", connection_id, "charge-ischarging", "bev"),
        ("not-capable", connection_id, "internalcombustionengine-fuellevel", "bev"),
        ("unauthorized", "c-unknown", "odometer-traveleddistance", "other"),
        ("unknown-target", connection_id, "warp-drive", "bev"),
    ]
    async with running_later():
        for request_id, connection, target, vehicle_id in sent:
            await redis.xadd(keys.requests, {"data": request_data(request_id, connection, target, vehicle_id)})
        assert len(await wait_for_decisions(redis, keys, len(sent))) == len(sent)
        # Sent once the others are decided, so that it is the stream's last entry: a tail counting up to it
        # has read every other entry on the way.
        await redis.xadd(keys.requests, {"data": request_data("last", connection_id, "odometer-traveleddistance")})
        assert len(await wait_for_decisions(redis, keys, len(sent) + 1)) == len(sent) + 1
    return connection_id


def printed_ids(stdout: str) -> list[str]:
    """The request ids of tail's readable lines (third column)."""
    return [line.split()[2] for line in stdout.splitlines()]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--outcome", "PERMISSION_DENIED", "--outcome", "allowed"], ["allowed", "denied", "last"]),
        (["--outcome", "REJECTED"], ["unknown-target"]),
        (["--vehicle", "other"], ["unauthorized"]),
        (["--vehicle", "bev", "--outcome", "VEHICLE_NOT_CAPABLE"], ["not-capable"]),
    ],
)
@pytest.mark.usefixtures("decided")
async def test_filters_by_outcome_and_vehicle(cli: Cli, args: list[str], expected: list[str]) -> None:
    """Only decisions with a chosen outcome and/or for the chosen vehicle are printed, in stream order."""
    result = await asyncio.to_thread(cli, "tail", "--from-start", "--count", str(len(expected)), *args)
    assert result.exit_code == 0, result.output
    assert sorted(printed_ids(result.stdout)) == sorted(expected)


@pytest.mark.usefixtures("decided")
async def test_readable_line_shows_the_decision_and_its_error(cli: Cli, redis: Redis, keys: Keys) -> None:
    """A denial's line carries its time, outcome, request, vehicle, target, permission and error type/code/text."""
    (published,) = [d for d in await wait_for_decisions(redis, keys, 6) if d["request_id"] == "denied"]
    result = await asyncio.to_thread(cli, "tail", "--from-start", "--outcome", "PERMISSION_DENIED", "--count", "1")
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    assert line.split()[:7] == [
        published["decided_at"],
        "PERMISSION_DENIED",
        "denied",
        "vehicle=bev",
        "signal:charge-ischarging",
        "permission=read_charge",
        "PERMISSION/null:",
    ]
    assert line.endswith(published["error"]["description"])
    assert "\x1b[" not in line  # not a terminal: no colour codes


async def test_json_lines_parse_as_the_published_decisions(cli: Cli, redis: Redis, keys: Keys, decided: str) -> None:
    """With --json each line is one decision's JSON object, equal to what the gatekeeper published."""
    published = await wait_for_decisions(redis, keys, 6)
    result = await asyncio.to_thread(cli, "tail", "--from-start", "--json", "--count", str(len(published)))
    assert result.exit_code == 0, result.output
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    assert printed == published
    assert {d["connection_id"] for d in printed} >= {decided, "c-unknown"}


async def test_default_starts_at_the_end_and_from_start_at_the_beginning(cli: Cli, redis: Redis, keys: Keys) -> None:
    """Without --from-start only decisions published after tail started are shown; with it, the oldest first."""
    for i in range(3):
        await redis.xadd(keys.decisions, {"data": decision_data(f"old-{i}")})
    following = asyncio.ensure_future(asyncio.to_thread(cli, "tail", "--count", "2"))
    n = 0
    while not following.done():  # keep publishing until the tail, whenever it started reading, has seen two
        await redis.xadd(keys.decisions, {"data": decision_data(f"new-{n}")})
        n += 1
        await asyncio.sleep(0.05)
    result = await following
    assert result.exit_code == 0, result.output
    shown = printed_ids(result.stdout)
    assert len(shown) == 2
    assert all(request_id.startswith("new-") for request_id in shown)
    first = int(shown[0].removeprefix("new-"))
    assert shown == [f"new-{first}", f"new-{first + 1}"]  # consecutive: nothing skipped between two reads

    result = await asyncio.to_thread(cli, "tail", "--from-start", "--count", "2")
    assert printed_ids(result.stdout) == ["old-0", "old-1"]


async def test_group_acknowledges_what_it_read_and_resumes_after_it(cli: Cli, redis: Redis, keys: Keys) -> None:
    """With --group every entry read is acknowledged (none pending), and the next run starts after them."""
    outcomes = [Outcome.ALLOWED, Outcome.PERMISSION_DENIED, Outcome.ALLOWED, Outcome.PERMISSION_DENIED]
    for i, outcome in enumerate([*outcomes, Outcome.ALLOWED]):
        await redis.xadd(keys.decisions, {"data": decision_data(f"r{i}", outcome)})
    args = ["tail", "--group", "viewers", "--from-start", "--outcome", "ALLOWED"]
    result = await asyncio.to_thread(cli, *args, "--count", "3")
    assert result.exit_code == 0, result.output
    assert printed_ids(result.stdout) == ["r0", "r2", "r4"]
    assert (await redis.xpending(keys.decisions, "viewers"))["pending"] == 0
    (group,) = await redis.xinfo_groups(keys.decisions)
    assert (group["name"], group["entries-read"]) == (b"viewers", 5)

    await redis.xadd(keys.decisions, {"data": decision_data("later")})
    result = await asyncio.to_thread(cli, *args, "--count", "1")
    assert printed_ids(result.stdout) == ["later"]
    assert (await redis.xpending(keys.decisions, "viewers"))["pending"] == 0


def test_bad_outcome_is_a_clear_error(cli: Cli) -> None:
    """An outcome that is not one of the five exits 2, names the bad value and lists the valid ones."""
    result = cli("tail", "--outcome", "ALLOWED", "--outcome", "sometimes", "--count", "1")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: unknown outcome 'sometimes'; valid outcomes: REJECTED, UNAUTHORIZED")
    assert "Traceback" not in result.output


async def test_malformed_entries_warn_and_tail_goes_on(cli: Cli, redis: Redis, keys: Keys) -> None:
    """Entries without `data`, with bad JSON or with non-decision JSON each print a warning; later ones still show."""
    await redis.xadd(keys.decisions, {"data": decision_data("before")})
    bad = [
        await redis.xadd(keys.decisions, {"other": "no data"}),
        await redis.xadd(keys.decisions, {"data": b"{not json"}),
        await redis.xadd(keys.decisions, {"data": b"\xff\xfe"}),
        await redis.xadd(keys.decisions, {"data": b'["a list"]'}),
    ]
    await redis.xadd(keys.decisions, {"data": decision_data("after")})
    result = await asyncio.to_thread(cli, "tail", "--from-start", "--count", "2")
    assert result.exit_code == 0, result.output
    assert printed_ids(result.stdout) == ["before", "after"]
    warnings = result.stderr.splitlines()
    assert [w.split()[2].encode() for w in warnings] == bad
    assert all(w.startswith("warning: entry ") and w.endswith("; skipped") for w in warnings)
    assert "no `data` field" in warnings[0]
    assert "not JSON" in warnings[1]


async def test_ctrl_c_exits_cleanly(redis_server: RedisServer, redis: Redis, keys: Keys) -> None:
    """SIGINT to a running `fleetgate tail` ends it with exit 0 and no traceback, after what it printed."""
    env = {**os.environ, "FLEETGATE_REDIS_URL": redis_server.url, "FLEETGATE_KEY_PREFIX": keys.prefix}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "tail", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None
    try:
        line = asyncio.ensure_future(process.stdout.readline())
        n = 0
        while not line.done():  # publish until the tail (started at the stream's end) shows one
            await redis.xadd(keys.decisions, {"data": decision_data(f"live-{n}")})
            n += 1
            await asyncio.wait([line], timeout=0.1)
        assert b"live-" in line.result()
        process.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=10)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0
    assert b"Traceback" not in stderr


async def test_redis_cli_reads_decisions_without_python(
    redis_server: RedisServer, redis: Redis, keys: Keys, connection_id: str, running_later: Runner
) -> None:
    """The plain redis-cli binary reads the decisions stream: each entry's `data` names its request and outcome."""
    expected = {"ok": "ALLOWED", "no": "PERMISSION_DENIED", "ghost": "UNAUTHORIZED"}
    targets = {"ok": "odometer-traveleddistance", "no": "charge-ischarging", "ghost": "odometer-traveleddistance"}
    async with running_later():
        for request_id, target in targets.items():
            connection = "c-unknown" if request_id == "ghost" else connection_id
            await redis.xadd(keys.requests, {"data": request_data(request_id, connection, target)})
        assert len(await wait_for_decisions(redis, keys, 3)) == 3
    binary = shutil.which("redis-cli")
    assert binary is not None, "redis-cli is not on PATH"
    command = [binary, "-p", str(redis_server.port), "XREAD", "COUNT", "10", "STREAMS", keys.decisions, "0"]
    output = (await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, check=True)).stdout
    assert keys.decisions in output
    assert all(f'"request_id":"{request_id}"' in output for request_id in expected)
    found = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert {d["request_id"]: d["outcome"] for d in found} == expected
