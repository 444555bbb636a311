"""The output streams' retention (services/retention.py) on a real redis-server: never below what a consumer group
has not acknowledged; the hard cap trims regardless and counts, per group, what it took unread."""

from __future__ import annotations

from redis.asyncio import Redis

from services.keyspace import Keys
from services.retention import GroupState, Retention
from services.streams import as_reply

STREAM_SUFFIX = "decisions"


async def _fill(redis: Redis, stream: str, count: int, first_ms: int = 1_000) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for n in range(count):
            pipe.xadd(stream, {"data": b"{}"}, id=f"{first_ms + n}-0")
        await pipe.execute()


async def _read(redis: Redis, stream: str, group: str, count: int, *, ack: bool) -> None:
    reply = as_reply(await redis.xreadgroup(group, "c", {stream: ">"}, count=count))
    if ack and reply:
        await redis.xack(stream, group, *(entry_id for entry_id, _ in reply[0][1]))


async def _first_id(redis: Redis, stream: str) -> bytes:
    return as_reply([(b"", await redis.xrange(stream, count=1))])[0][1][0][0]


async def test_without_groups_the_newest_maxlen_entries_are_kept(redis: Redis, keys: Keys) -> None:
    """No consumer group: exactly the newest `maxlen` entries stay."""
    stream = f"{keys.prefix}:{STREAM_SUFFIX}"
    await _fill(redis, stream, 300)
    retained = await Retention(redis, maxlen=100, hard_cap=0, max_age_s=0).apply(stream, now_ms=10_000)
    assert (retained.trimmed, retained.unread_trimmed, retained.groups) == (200, {}, {})
    assert await _first_id(redis, stream) == b"1200-0"


async def test_a_group_that_has_not_read_holds_the_stream_until_it_acknowledges(redis: Redis, keys: Keys) -> None:
    """A group that read nothing keeps all 300 entries, far past maxlen 100; after it read and acknowledged 250,
    the stream goes back to the newest 100; one that only read (pending) holds from its oldest pending entry."""
    stream = f"{keys.prefix}:{STREAM_SUFFIX}"
    await _fill(redis, stream, 300)
    await redis.xgroup_create(stream, "audit", id="0")
    retention = Retention(redis, maxlen=100, hard_cap=0, max_age_s=0)
    retained = await retention.apply(stream, now_ms=10_000)
    assert retained.trimmed == 0
    assert retained.groups == {"audit": GroupState(pending=0, lag=300)}
    await _read(redis, stream, "audit", 150, ack=True)
    await _read(redis, stream, "audit", 100, ack=False)  # 1150-0 .. 1249-0 pending
    retained = await retention.apply(stream, now_ms=10_000)
    assert retained.trimmed == 150
    assert await _first_id(redis, stream) == b"1150-0"
    assert retained.groups == {"audit": GroupState(pending=100, lag=50)}
    await redis.xack(stream, "audit", *(f"{1150 + n}-0" for n in range(100)))
    assert (await retention.apply(stream, now_ms=10_000)).trimmed == 50
    assert await redis.xlen(stream) == 100


async def test_age_retention_spares_what_a_group_has_not_acknowledged(redis: Redis, keys: Keys) -> None:
    """Entries past the max age go once acknowledged; those a group has not read stay, however old."""
    stream = f"{keys.prefix}:{STREAM_SUFFIX}"
    await _fill(redis, stream, 100, first_ms=1_000)  # ids 1000-0 .. 1099-0, all older than 1 s at now 5000
    await redis.xgroup_create(stream, "audit", id="0")
    await _read(redis, stream, "audit", 40, ack=True)
    retention = Retention(redis, maxlen=0, hard_cap=0, max_age_s=1)
    assert (await retention.apply(stream, now_ms=5_000)).trimmed == 40
    assert await redis.xlen(stream) == 60


async def test_the_hard_cap_trims_unread_entries_and_counts_them_per_group(redis: Redis, keys: Keys) -> None:
    """Cap 1,000 over 3,000 entries: a group that read 500 lost 1,500; one that read them all lost none; one
    created at the end lost none; the stream holds exactly the newest 1,000."""
    stream = f"{keys.prefix}:{STREAM_SUFFIX}"
    await _fill(redis, stream, 3_000)
    await redis.xgroup_create(stream, "slow", id="0")
    await redis.xgroup_create(stream, "fast", id="0")
    await _read(redis, stream, "slow", 500, ack=True)
    await _read(redis, stream, "fast", 3_000, ack=True)
    await redis.xgroup_create(stream, "new", id="$")
    retained = await Retention(redis, maxlen=500, hard_cap=1_000, max_age_s=0).apply(stream, now_ms=10_000)
    assert retained.unread_trimmed == {"slow": 1_500}
    assert retained.trimmed == 2_000
    assert await redis.xlen(stream) == 1_000
    assert retained.groups["slow"] == GroupState(pending=0, lag=1_000)
