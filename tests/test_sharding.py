"""Sharding: shard of an id, hash tags spread over the slot ranges, key names, settings, and workers per shard."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import ValidationError
from redis.crc import key_slot

from devtools.builders import TEST_TIMINGS
from services.gatekeeper.connections import SPARE, UPKEEP_JOBS, connections_needed
from services.gatekeeper.intake import read_entry
from services.gatekeeper.worker import READ_SPAN, Gatekeeper, read_count, serve
from services.keyspace import SLOTS, Keys, parse_shards, shard_of, shard_slots, shard_tag
from services.local_redis import RedisServer
from services.redis_client import connect
from services.settings import Settings


@pytest.mark.parametrize("shards", [2, 3, 6, 12, 64])
def test_each_shard_tag_lies_in_its_own_slot_range(shards: int) -> None:
    """So a cluster with its slots split evenly over M masters serves S / M shards on each (S a multiple of M)."""
    for index in range(shards):
        assert key_slot(shard_tag(index, shards).encode()) in shard_slots(index, shards)
    masters = 3 if shards % 3 == 0 else 2
    per_master = [0] * masters
    for index in range(shards):
        per_master[key_slot(Keys("any", shards).shard(index).requests.encode()) * masters // SLOTS] += 1
    assert per_master == [shards // masters] * masters


def test_an_id_belongs_to_the_shard_of_its_slot_range() -> None:
    assert shard_of("veh-1", 1) == 0
    assert shard_of("veh-1", 6) == key_slot(b"veh-1") * 6 // SLOTS
    counts = [0] * 6
    for n in range(6000):
        counts[shard_of(f"veh-{n}", 6)] += 1
    assert min(counts) > 800  # spread: about 1000 each


def test_sharded_names_share_the_shard_tag_and_unsharded_names_stay() -> None:
    plain, sharded = Keys("fg"), Keys("fg", 6)
    assert (plain.requests, plain.decisions, plain.connection("c-1"), plain.current_config) == (
        "fg:requests",
        "fg:decisions",
        "fg:conn:c-1",
        "fg:access:current",
    )
    shard = sharded.shard(3)
    tagged = {shard.requests, shard.decisions, shard.deadletter, shard.connection_events, shard.decided(7)}
    assert {key_slot(key.encode()) for key in tagged} == {key_slot(f"{{{shard_tag(3, 6)}}}".encode())}
    assert sharded.connection("c-1").startswith(f"fg:{{{shard_tag(shard_of('c-1', 6), 6)}}}:conn:")
    assert key_slot(sharded.config(7).encode()) == key_slot(sharded.current_config.encode())
    with pytest.raises(ValueError, match=r"name one with keys\.shard"):
        _ = sharded.requests


def test_shard_lists_parse_and_bad_ones_are_named() -> None:
    assert parse_shards("0-2,5", 6) == [0, 1, 2, 5]
    for text, message in (("6", "numbered 0 to 5"), ("2-1", "numbered 0 to 5"), ("x", "not a shard number")):
        with pytest.raises(ValueError, match=message):
            parse_shards(text, 6)


def test_settings_refuse_a_cluster_without_shards_and_workers_on_missing_shards() -> None:
    with pytest.raises(ValidationError, match="FLEETGATE_SHARDS of 2 or more"):
        Settings(redis_cluster=True)
    with pytest.raises(ValidationError, match="numbered 0 to 3"):
        Settings(shards=4, worker_shards="2-4")
    assert Settings(shards=4, worker_shards="1,3").worker_shard_numbers == [1, 3]
    assert Settings(shards=4).worker_shard_numbers == [0, 1, 2, 3]


async def test_two_workers_on_half_the_shards_each_decide_everything_once(redis_server: RedisServer) -> None:
    """One worker on shards 0-2 decides only their requests; a second on 3-5 decides the rest; none twice."""
    keys = Keys("split", 6)
    redis = connect(redis_server.url)
    base = Settings(redis_url=redis_server.url, key_prefix=keys.prefix, shards=6, **TEST_TIMINGS)
    sent: dict[int, set[str]] = {i: set() for i in range(6)}
    for n in range(300):
        vehicle = f"v-{n}"
        body = {"request_id": f"r{n}", "connection_id": "c-x", "vehicle_id": vehicle, "kind": "signal",
                "target": "odometer-traveleddistance", "issued_at": "2026-11-28T12:00:00Z"}  # fmt: skip
        await redis.xadd(keys.shard_of_vehicle(vehicle).requests, {"data": json.dumps(body)})
        sent[shard_of(vehicle, 6)].add(f"r{n}")

    async def decided(shard: int) -> list[str]:
        entries = await redis.xrange(keys.shard(shard).decisions) or []
        return [json.loads((fields or {})[b"data"])["request_id"] for _, fields in entries]

    async def run_until(worker: Gatekeeper, shards: range) -> None:
        task = asyncio.create_task(serve(worker))
        wanted = sum(len(sent[i]) for i in shards)
        for _ in range(200):
            if sum([len(await decided(i)) for i in shards]) >= wanted:
                break
            await asyncio.sleep(0.05)
        worker.stop()
        await task

    try:
        await run_until(Gatekeeper(base.model_copy(update={"worker_shards": "0-2"}), redis), range(3))
        assert [sorted(await decided(i)) for i in range(3, 6)] == [[], [], []]
        await run_until(Gatekeeper(base.model_copy(update={"worker_shards": "3-5"}), redis), range(3, 6))
        for shard in range(6):
            assert sorted(await decided(shard)) == sorted(sent[shard])
    finally:
        await redis.aclose()


def test_unreadable_ids_are_unique_across_shards() -> None:
    """Entry ids repeat across the shards' streams, so a sharded deployment answers an unreadable entry under its
    shard's tag as well (two unreadable entries with one entry id on two shards got one request id)."""
    keys = Keys("fg", 6)
    ids = {keys.shard(i).unreadable_id("1795926729920-0") for i in range(6)}
    assert len(ids) == 6
    assert keys.shard(3).unreadable_id("1-0") == f"unreadable:{shard_tag(3, 6)}:1-0"
    assert Keys("fg").shard(0).unreadable_id("1-0") == "unreadable:1-0"
    rejection = read_entry(b"1-0", {b"data": b"{not json"}, 1024, keys.shard(3).unreadable_prefix)
    assert rejection.request_id == f"unreadable:{shard_tag(3, 6)}:1-0"


def test_a_worker_needs_as_many_connections_on_one_redis_whatever_its_shards() -> None:
    """On one Redis each consume loop reads every shard at once: the need is the same at 1 and 64 shards. On a
    cluster each consumed shard has its own blocking read, so the need per master follows the consumed shards."""
    assert connections_needed(Settings(shards=64)) == connections_needed(Settings(shards=1))
    assert connections_needed(Settings(shards=1)).per_server == 3 + 1 + UPKEEP_JOBS + SPARE
    assert connections_needed(Settings(redis_cluster=True, shards=64)).consume_loops == 64
    assert connections_needed(Settings(redis_cluster=True, shards=64, worker_shards="0-15")).consume_loops == 16
    assert connections_needed(Settings(redis_cluster=True, shards=2)).consume_loops == 4  # 3 loops: 2 per shard


def test_a_read_of_many_shards_stays_bounded() -> None:
    """One shard reads a batch as before; many share out READ_SPAN batches, so a read stays bounded."""
    assert read_count(500, 1) == 500
    assert read_count(500, READ_SPAN) == 500
    for shards in (9, 64, 1024):
        assert read_count(500, shards) * shards <= READ_SPAN * 500
    assert read_count(500, 64) == 62
    assert read_count(10, 1024) == 1
