"""`fleetgate tail` on a real redis-server: filters, start position, groups, JSON, bad entries, shards; redis-cli."""

from __future__ import annotations

import asyncio
import json
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
from redis.asyncio.cluster import RedisCluster
from typer.testing import CliRunner, Result

from devtools.builders import request_json
from devtools.workers import fleetgate_env
from fleetgate import app
from schemas.messages import DecisionMessage
from schemas.problems import Outcome, permission_denied
from services.gatekeeper.worker import Gatekeeper
from services.keyspace import Keys
from services.local_redis import RedisServer
from services.streams import sweep_block_ms

Runner = Callable[[], AbstractAsyncContextManager[Gatekeeper]]
Cli = Callable[..., Result]
SHARDS = 6


def request_data(request_id: str, connection_id: str, target: str, vehicle_id: str = "bev") -> bytes:
    """A request as any client would XADD it."""
    return request_json(request_id, connection_id=connection_id, vehicle_id=vehicle_id, target=target)


def decision_data(
    request_id: str, outcome: Outcome = Outcome.ALLOWED, vehicle_id: str = "veh-1", app_id: str | None = None
) -> bytes:
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
        app_id=app_id,
    ).encode()


async def wait_for_decisions(redis: Redis, keys: Keys, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The decisions on the stream once there are at least `count` (all of them, decoded)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        entries = await redis.xrange(keys.decisions) or []
        if len(entries) >= count or asyncio.get_running_loop().time() > deadline:
            return [json.loads((fields or {})[b"data"]) for _, fields in entries]
        await asyncio.sleep(0.02)


def cli_for(url: str, keys: Keys, *, cluster: bool = False) -> Cli:
    """Run `fleetgate ...` on `url` with the keys' prefix and shards (call it in a thread from async)."""
    env = {"FLEETGATE_REDIS_URL": url, "FLEETGATE_KEY_PREFIX": keys.prefix, "FLEETGATE_SHARDS": str(keys.shards)}
    if cluster:
        env["FLEETGATE_REDIS_CLUSTER"] = "true"

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(app, list(args), env=env)

    return invoke


@pytest.fixture
def cli(redis_server: RedisServer, keys: Keys) -> Cli:
    """Run `fleetgate ...` against the test server under this test's key prefix (call it in a thread from async)."""
    return cli_for(redis_server.url, keys)


@pytest.fixture
def sharded_keys(keys: Keys) -> Keys:
    """This test's prefix with six shards: each shard has its own decisions stream."""
    return Keys(prefix=keys.prefix, shards=SHARDS)


@pytest.fixture
def sharded_cli(redis_server: RedisServer, sharded_keys: Keys) -> Cli:
    """Run `fleetgate ...` with FLEETGATE_SHARDS=6 against the test server."""
    return cli_for(redis_server.url, sharded_keys)


async def publish_per_shard(
    redis: Redis | RedisCluster, keys: Keys, shards: list[int], per_shard: int, label: str = "r"
) -> dict[int, list[str]]:
    """`per_shard` decisions into each chosen shard's decisions stream, round-robin; their request ids by shard."""
    published: dict[int, list[str]] = {shard: [] for shard in shards}
    for n in range(per_shard):
        for shard in shards:
            request_id = f"{label}{shard}-{n}"
            await redis.xadd(keys.shard(shard).decisions, {"data": decision_data(request_id)})
            published[shard].append(request_id)
    return published


def in_shard_order(shown: list[str], published: dict[int, list[str]]) -> bool:
    """Whether each shard's decisions were shown in the order that shard's stream holds them."""
    return all([i for i in shown if i in ids] == ids for ids in published.values())


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
    env = fleetgate_env(redis_server.url, keys.prefix)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fleetgate", "tail", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
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


async def test_sharded_tail_shows_every_shards_decisions_once(
    redis: Redis, sharded_keys: Keys, sharded_cli: Cli
) -> None:
    """With six shards, --from-start shows the decisions of every shard's stream, each once, each shard in order."""
    published = await publish_per_shard(redis, sharded_keys, [0, 2, 3, 5], per_shard=3)
    expected = [request_id for ids in published.values() for request_id in ids]
    result = await asyncio.to_thread(sharded_cli, "tail", "--from-start", "--json", "--count", str(len(expected)))
    assert result.exit_code == 0, result.output
    shown = [json.loads(line)["request_id"] for line in result.stdout.splitlines()]
    assert sorted(shown) == sorted(expected)
    assert in_shard_order(shown, published)


async def test_sharded_tail_starts_at_every_streams_end(redis: Redis, sharded_keys: Keys, sharded_cli: Cli) -> None:
    """Without --from-start, only decisions published after tail started show, from every shard, none skipped."""
    await publish_per_shard(redis, sharded_keys, list(range(SHARDS)), per_shard=2, label="old")
    following = asyncio.ensure_future(asyncio.to_thread(sharded_cli, "tail", "--count", str(2 * SHARDS)))
    published: dict[int, list[str]] = {shard: [] for shard in range(SHARDS)}
    n = 0
    while not following.done():  # keep publishing, over every shard, until the tail has seen enough
        shard = n % SHARDS
        request_id = f"new{shard}-{n // SHARDS}"
        await redis.xadd(sharded_keys.shard(shard).decisions, {"data": decision_data(request_id)})
        published[shard].append(request_id)
        n += 1
        await asyncio.sleep(0.02)
    result = await following
    assert result.exit_code == 0, result.output
    shown = printed_ids(result.stdout)
    assert len(shown) == 2 * SHARDS
    assert all(request_id.startswith("new") for request_id in shown)
    assert len({request_id.split("-")[0] for request_id in shown}) > 1  # more than one shard's stream was read
    for ids in published.values():  # per shard: a run of consecutive decisions, nothing skipped between reads
        seen = [request_id for request_id in shown if request_id in ids]
        first = ids.index(seen[0]) if seen else 0
        assert seen == ids[first : first + len(seen)]


async def test_sharded_group_acknowledges_per_shard_and_reads_no_more_than_count(
    redis: Redis, sharded_keys: Keys, sharded_cli: Cli
) -> None:
    """--group makes the group on every shard's stream; --count stops mid-way with nothing left pending anywhere."""
    published = await publish_per_shard(redis, sharded_keys, [1, 4, 5], per_shard=2)
    args = ["tail", "--group", "viewers", "--from-start"]
    first = await asyncio.to_thread(sharded_cli, *args, "--count", "3")
    assert first.exit_code == 0, first.output
    assert len(printed_ids(first.stdout)) == 3
    for shard in sharded_keys.all_shards:
        (group,) = await redis.xinfo_groups(shard.decisions)
        assert group["name"] == b"viewers"
        assert group["pending"] == 0  # acknowledged on the shard it was read from, and never read beyond --count
    rest = await asyncio.to_thread(sharded_cli, *args, "--count", "3")
    assert rest.exit_code == 0, rest.output
    shown = printed_ids(first.stdout) + printed_ids(rest.stdout)
    assert sorted(shown) == sorted(request_id for ids in published.values() for request_id in ids)
    assert in_shard_order(shown, published)
    for index, ids in published.items():
        (group,) = await redis.xinfo_groups(sharded_keys.shard(index).decisions)
        assert (group["pending"], group["entries-read"]) == (0, len(ids))


def test_a_sweep_waits_about_block_ms_in_all_and_not_at_all_after_finding_entries() -> None:
    """Each shard's read waits its share of the wait (at least 1 ms: 0 is forever); none waits in a busy sweep."""
    assert sweep_block_ms(250, 1, found=False) == 250
    assert sweep_block_ms(250, 6, found=False) == 41
    assert sweep_block_ms(250, 1024, found=False) == 1
    assert sweep_block_ms(250, 6, found=True) is None
