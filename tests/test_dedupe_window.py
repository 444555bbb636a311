"""The dedupe window's buckets (services/dedupe.py) and the COMMIT script that checks and fills them.

The script tests run on the session's redis-server and on the local Redis Cluster (the `deployment` fixture).
"""

from __future__ import annotations

import random
import time

import pytest

from services import dedupe
from services.dedupe import DedupeWindow
from services.gatekeeper.resp import RespScript, transport_for
from services.gatekeeper.scripts import COMMIT, Commit
from services.keyspace import ShardKeys
from services.redis_client import Client
from tests.deployment import Deployment

DAY = 86_400
NOW = float(int(time.time()) + 10 * DAY)  # the scripts' clock: ahead, so that no bucket written has expired


def test_an_id_is_found_for_the_whole_window_even_from_a_skewed_clock() -> None:
    """An id written at t (by a clock up to a bucket ahead or behind) is in a checked bucket at every moment of
    [t, t + window], and its bucket expires no earlier than t + window."""
    rng = random.Random(5)
    for window_s in (1, 7, 60, 3_600, DAY, 7 * DAY):
        window = DedupeWindow(window_s)
        for _ in range(500):
            written = rng.uniform(0, 1e9)
            skew = rng.uniform(-0.99, 0.99) * window.bucket_s
            bucket = window.bucket(written + skew)
            assert window.expires_at(bucket) >= written + skew + window_s
            for later in (written, written + rng.uniform(0, window_s), written + window_s):
                assert bucket in window.checked(later), (window_s, written, skew, later)


def test_a_day_is_checked_in_at_most_eight_buckets() -> None:
    """The default window: 6-hour buckets, at most 8 checked (the window's 4 or 5 and one more at each end)."""
    window = DedupeWindow(DAY)
    assert window.bucket_s == 6 * 3600
    assert max(len(window.checked(1e9 + s)) for s in range(0, DAY, 977)) <= 8
    assert window.checked(NOW)[1] == window.bucket(NOW)


@pytest.fixture
def lane(deployment: Deployment) -> ShardKeys:
    return deployment.lane("bev")


async def commit(redis: Client, lane: ShardKeys, request_ids: list[str], now: float, window_s: int = DAY) -> str:
    """Run COMMIT for one batch (entry ids made up: XACK of unknown ids is a no-op); returns its flags."""
    batch = Commit(lane, "gatekeeper", DedupeWindow(window_s), now)
    for n, request_id in enumerate(request_ids):
        batch.add(f"{n + 1}-0", request_id, '{"v":1}', "ALLOWED")
    flags = await RespScript(transport_for(redis, lane.requests), COMMIT)(batch.keys, batch.args, batch.entries)
    return flags.decode() if isinstance(flags, bytes) else str(flags)


async def test_an_id_decided_a_day_ago_is_a_duplicate(deployment: Deployment, lane: ShardKeys) -> None:
    """A request id decided at NOW is a duplicate just under a window later (three buckets on) and from a clock
    a few hours behind; a repeat inside one batch is published once; only new ids reach the stream."""
    redis = deployment.client
    assert await commit(redis, lane, ["a", "b", "a"], NOW) == "110"
    assert await commit(redis, lane, ["a", "c", "b"], NOW + DAY - 1) == "010"
    assert await commit(redis, lane, ["c", "d"], NOW + DAY - 1 - 5 * 3600) == "01"
    assert await redis.xlen(lane.decisions) == 4
    bucket = DedupeWindow(DAY).bucket(NOW)
    assert await redis.smembers(lane.decided(bucket)) == {b"a", b"b"}


async def test_the_current_bucket_expires_a_window_after_its_end(deployment: Deployment, lane: ShardKeys) -> None:
    """The bucket written gets its expiry (EXPIRETIME) a whole window after the bucket's last second."""
    redis = deployment.client
    window = DedupeWindow(3_600)
    now = time.time()  # an expiry in the past would delete the bucket at once
    await commit(redis, lane, ["x"], now, window_s=3_600)
    bucket = window.bucket(now)
    assert await redis.execute_command("EXPIRETIME", lane.decided(bucket)) == window.expires_at(bucket)


async def test_batches_of_five_thousand_pass_luas_unpack_limit(deployment: Deployment, lane: ShardKeys) -> None:
    """The largest batch (batch_size 5000): every id published once, then every id a duplicate."""
    ids = [f"big-{n}" for n in range(5000)]
    assert await commit(deployment.client, lane, ids, NOW) == "1" * 5000
    assert await commit(deployment.client, lane, ids, NOW + 60) == "0" * 5000
    assert await deployment.client.xlen(lane.decisions) == 5000


async def test_forget_removes_a_runs_ids_from_every_bucket(deployment: Deployment, lane: ShardKeys) -> None:
    """A load test's cleanup removes its run's ids (by pattern) and named ids, in every bucket, and nothing else."""
    redis = deployment.client
    await commit(redis, lane, ["run1-1", "run1-2", "keep-1", "unreadable:9-0"], NOW)
    await commit(redis, lane, ["run1-3", "keep-2"], NOW + DAY / 2)
    assert await dedupe.forget(redis, lane, matching="run1-*", ids=["unreadable:9-0"]) == 4
    assert await commit(redis, lane, ["run1-1", "run1-3", "keep-1", "keep-2", "unreadable:9-0"], NOW + DAY / 2) == (
        "11001"
    )
