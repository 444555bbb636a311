"""Dead letters on a real redis-server: `fleetgate deadletter list|show|redrive` and services/deadletters.py.

Dead letters come from a real gatekeeper (a `decide` that raises for one request) or are written with
`encode_dead_letter`, as the worker writes them; unreadable ones are written by hand.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from typer.testing import CliRunner, Result

from devtools.builders import request_json
from fleetgate import app
from schemas.decision import decide
from schemas.outbound import encode_dead_letter
from services.deadletters import CHUNK, REDRIVE, Redriven, list_letters, redrive, redrive_all
from services.gatekeeper import worker as worker_module
from services.gatekeeper.worker import Gatekeeper
from services.keyspace import Keys, ShardKeys
from services.local_redis import RedisServer
from services.redis_client import Client
from services.streams import Entry
from tests.deployment import Deployment

Runner = Callable[[], AbstractAsyncContextManager[Gatekeeper]]
Cli = Callable[..., Result]


def request(request_id: str, connection_id: str = "c-unknown") -> bytes:
    return request_json(request_id, connection_id=connection_id, vehicle_id="bev", target="odometer-traveleddistance")


def letter(shard: ShardKeys, fields: dict[bytes, bytes], entry_id: bytes = b"1-0", stream: str | None = None) -> bytes:
    """A dead letter as the worker writes it, for an entry of `shard`'s requests stream (or of `stream`)."""
    now = datetime.now(UTC)
    return encode_dead_letter(stream or shard.requests, entry_id, fields, deliveries=6, reason="KeyError: 'x'", now=now)


async def add(redis: Client, stream: str, fields: dict[Any, Any], entry_id: str = "*") -> str:
    """XADD, returning the new entry's id as text."""
    added = await redis.xadd(stream, fields, id=entry_id)
    return added.decode() if isinstance(added, bytes) else added


async def entries(redis: Client, stream: str) -> list[Entry]:
    return cast("list[Entry]", await redis.xrange(stream) or [])


async def dead_letter(redis: Client, shard: ShardKeys, request_id: str, entry_id: str = "*") -> str:
    """A dead letter of the request `request_id` (on `shard`'s requests stream), as the worker writes it."""
    return await add(redis, shard.deadletter, {"data": letter(shard, {b"data": request(request_id)})}, entry_id)


@pytest.fixture
def cli(redis_server: RedisServer, keys: Keys) -> Cli:
    """Run `fleetgate deadletter ...` on the test server and prefix (from async code: in a thread)."""

    def invoke(*args: str, shards: int = 1) -> Result:
        env = {"FLEETGATE_REDIS_URL": redis_server.url, "FLEETGATE_KEY_PREFIX": keys.prefix}
        return CliRunner().invoke(app, ["deadletter", *args], env=env | {"FLEETGATE_SHARDS": str(shards)})

    return invoke


@pytest.fixture
async def running(running_later: Runner) -> Any:
    """A gatekeeper worker running for the whole test."""
    async with running_later() as gatekeeper:
        yield gatekeeper


async def wait_for(condition: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def decided(redis: Client, keys: Keys) -> list[str]:
    return [json.loads(fields[b"data"])["request_id"] for _, fields in await entries(redis, keys.decisions)]


async def settled(redis: Client, keys: Keys) -> bool:
    """The gatekeeper's group has read and acknowledged every entry of the requests stream."""
    (group,) = await redis.xinfo_groups(keys.requests)
    return int(group["pending"]) == 0 and int(group["lag"]) == 0


async def test_a_worker_dead_letter_is_listed_shown_and_redriven_then_decided_once(
    redis: Client, keys: Keys, connection_id: str, cli: Cli, running_later: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An entry the worker gave up on is listed and shown; once the bug is fixed, redrive re-publishes its fields
    (a non-UTF-8 one too) and the worker decides it exactly once."""

    def failing_decide(request: Any, connection: Any, vehicle: Any) -> Any:
        if request.request_id == "poison":
            raise RuntimeError("boom")
        return decide(request, connection, vehicle)

    monkeypatch.setattr(worker_module, "decide", failing_decide)
    original = {b"data": request("poison", connection_id), b"trace": b"\xff\x00raw"}
    await add(redis, keys.requests, original)
    async with running_later():
        await wait_for(lambda: redis.xlen(keys.deadletter))
    listed = await asyncio.to_thread(cli, "list", "--json")
    (item,) = json.loads(listed.stdout)
    assert (item["request_id"], item["message"]["deliveries"]) == ("poison", 3)
    assert "RuntimeError: boom" in item["message"]["reason"]
    table = await asyncio.to_thread(cli, "list")
    assert item["id"] in table.stdout
    assert "poison" in table.stdout
    assert "RuntimeError: boom" in table.stdout
    shown = await asyncio.to_thread(cli, "show", item["id"])
    assert shown.exit_code == 0
    assert "field trace (base64)" in shown.stdout
    assert keys.requests in shown.stdout

    monkeypatch.setattr(worker_module, "decide", decide)  # the cause is fixed
    redriven = await asyncio.to_thread(cli, "redrive", item["id"])
    assert redriven.exit_code == 0
    assert "re-published 1 dead letter(s)" in redriven.stdout
    assert await redis.xlen(keys.deadletter) == 0
    *_, (new_id, fields) = await entries(redis, keys.requests)
    assert fields == original
    assert new_id.decode() in redriven.stdout
    async with running_later():
        await wait_for(lambda: settled(redis, keys))
        await asyncio.sleep(0.3)
    assert await decided(redis, keys) == ["poison"]


@pytest.mark.usefixtures("running")
async def test_redriving_a_request_already_decided_gives_no_second_decision(
    redis: Client, keys: Keys, connection_id: str
) -> None:
    """A dead letter of a request whose id was decided meanwhile (a duplicate publish) is redriven, acknowledged
    by the gatekeeper's dedupe, and gets no second decision."""
    await add(redis, keys.requests, {"data": request("twice", connection_id)})
    await wait_for(lambda: decided(redis, keys))
    (done,) = await redrive(redis, keys, [await dead_letter(redis, keys.shard(0), "twice")])
    await wait_for(lambda: settled(redis, keys))
    assert (await redis.xinfo_groups(keys.requests))[0]["last-delivered-id"].decode() == done.entry_id
    assert await decided(redis, keys) == ["twice"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("redrive", "99-0"), "no dead letter 99-0"),
        (("redrive", "{first}", "99-0"), "no dead letter 99-0"),
        (("redrive",), "name the dead-letter ids"),
        (("redrive", "--all", "{first}"), "not both"),
        (("redrive", "not-an-id"), "'not-an-id' is not a stream entry id"),
        (("show", "99-0"), "no dead letter 99-0"),
    ],
)
async def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    redis: Client, keys: Keys, cli: Cli, args: tuple[str, ...], says: str
) -> None:
    """An unknown id (alone or with a good one), no id, ids and --all: one line on stderr, exit 2, nothing written."""
    first = await dead_letter(redis, keys.shard(0), "r")
    result = await asyncio.to_thread(cli, *(arg.replace("{first}", first) for arg in args))
    assert (result.exit_code, result.stdout) == (2, "")
    assert len(result.stderr.splitlines()) == 1
    assert says in result.stderr
    assert await redis.xlen(keys.deadletter) == 1
    assert not await redis.exists(keys.requests)


async def test_malformed_dead_letters_are_listed_unreadable_and_left_alone(redis: Client, keys: Keys, cli: Cli) -> None:
    """Entries that are not DeadLetterMessages are listed as unreadable, never crash, and are not redriven."""
    good = await dead_letter(redis, keys.shard(0), "good")
    for fields in ({"data": b"{not json"}, {"other": b"no data"}, {"data": b'{"v": 1, "entry_id": 5}'}):
        await add(redis, keys.deadletter, fields)
    listed = await list_letters(redis, keys, limit=10, newest_first=False)
    assert [item.unreadable is None for item in listed] == [True, False, False, False]
    assert listed[2].unreadable == "no data field"
    assert listed[0].request_id == "good"
    table = await asyncio.to_thread(cli, "list")
    assert table.exit_code == 0
    assert table.stdout.count("unreadable:") == 3
    refused = await asyncio.to_thread(cli, "redrive", listed[1].id)
    assert refused.exit_code == 2
    assert "unreadable" in refused.stderr
    everything = await asyncio.to_thread(cli, "redrive", "--all")
    assert everything.exit_code == 0
    assert f"{good} on" in everything.stdout
    assert everything.stderr.count("skipped:") == 3
    assert await redis.xlen(keys.deadletter) == 3
    assert await redis.xlen(keys.requests) == 1


@pytest.mark.parametrize("problem", ["foreign", "missing"])
async def test_the_script_refuses_a_tampered_or_missing_letter_and_writes_nothing(
    redis: Client, keys: Keys, problem: str
) -> None:
    """REDRIVE itself checks, server-side: a letter naming another stream, or one gone, refuses the whole call."""
    shard = keys.shard(0)
    stream = f"{keys.prefix}:elsewhere" if problem == "foreign" else None
    good, bad = (letter(shard, {b"data": request(f"r{i}")}, stream=stream if i else None) for i in range(2))
    ids = [await add(redis, shard.deadletter, {"data": data}) for data in (good, bad)]
    if problem == "missing":
        await redis.xdel(shard.deadletter, ids[1])
    args: list[Any] = ["1"]
    for entry_id, data in zip(ids, (good, bad), strict=True):
        args += [entry_id, data, 1, b"data", b"{}"]
    reply = await redis.register_script(REDRIVE)(keys=[shard.deadletter, shard.requests], args=args)
    assert reply == [problem.encode(), ids[1].encode()]
    assert not await redis.exists(shard.requests, f"{keys.prefix}:elsewhere")
    assert await redis.xlen(shard.deadletter) == (2 if problem == "foreign" else 1)


async def test_sharded_dead_letters_are_found_on_their_shard(redis: Client, keys: Keys, cli: Cli) -> None:
    """With 4 shards: listed over all, an id on two shards is ambiguous until --shard names one, and each is
    redriven to its own shard's requests stream."""
    sharded = Keys(prefix=keys.prefix, shards=4)
    for index in (0, 2):
        await dead_letter(redis, sharded.shard(index), f"s{index}", "5-1")
    await dead_letter(redis, sharded.shard(1), "s1")
    listed = json.loads((await asyncio.to_thread(cli, "list", "--json", shards=4)).stdout)
    assert [(item["shard"], item["request_id"]) for item in listed] == [(1, "s1"), (2, "s2"), (0, "s0")]
    ambiguous = await asyncio.to_thread(cli, "show", "5-1", shards=4)
    assert ambiguous.exit_code == 2
    assert sharded.shard(0).deadletter in ambiguous.stderr
    assert sharded.shard(2).deadletter in ambiguous.stderr
    shown = json.loads((await asyncio.to_thread(cli, "show", "5-1", "--shard", "2", "--json", shards=4)).stdout)
    assert shown["request_id"] == "s2"
    assert (await asyncio.to_thread(cli, "redrive", "5-1", "--shard", "0", shards=4)).exit_code == 0
    assert (await asyncio.to_thread(cli, "redrive", "--all", shards=4)).exit_code == 0
    for index in (0, 1, 2):
        shard = sharded.shard(index)
        ((_, fields),) = await entries(redis, shard.requests)
        assert json.loads(fields[b"data"])["request_id"] == f"s{index}"
        assert await redis.xlen(shard.deadletter) == 0


async def test_redrive_all_goes_chunk_by_chunk_in_order(redis: Client, keys: Keys, cli: Cli) -> None:
    """`--all` with more dead letters than two chunks re-publishes every one, in dead-letter order."""
    count = 2 * CHUNK + 5
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(count):
            pipe.xadd(keys.deadletter, {"data": letter(keys.shard(0), {b"data": request(f"r{i}")})})
        await pipe.execute()
    result = await asyncio.to_thread(cli, "redrive", "--all")
    assert result.exit_code == 0
    assert f"re-published {count} dead letter(s)" in result.stdout
    republished = [json.loads(fields[b"data"])["request_id"] for _, fields in await entries(redis, keys.requests)]
    assert republished == [f"r{i}" for i in range(count)]
    assert await redis.xlen(keys.deadletter) == 0


async def test_redrive_all_on_every_deployment(deployment: Deployment) -> None:
    """On one Redis and on a Redis Cluster with six shards (no CROSSSLOT): each letter back to its shard."""
    redis, keys = deployment.client, deployment.keys
    for shard in keys.all_shards:
        await dead_letter(redis, shard, f"s{shard.index}")
    done = [item async for item in redrive_all(redis, keys, chunk=2)]
    assert all(isinstance(item, Redriven) for item in done)
    assert len(done) == keys.shards
    for shard in keys.all_shards:
        ((_, fields),) = await entries(redis, shard.requests)
        assert json.loads(fields[b"data"])["request_id"] == f"s{shard.index}"
        assert await redis.xlen(shard.deadletter) == 0
