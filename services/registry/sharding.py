"""How fleetgate splits its streams and connections into shards, for Redis Cluster (setting `FLEETGATE_SHARDS`).

Shard `i` of `S` owns the `i`-th of `S` equal ranges of the 16384 cluster slots. An id (a vehicle's, a
connection's) belongs to the shard whose range holds the id's own slot (what `CLUSTER KEYSLOT id` answers, and
every cluster client computes), so any producer in any language routes the same way. Each shard's keys share
one hash tag, `s{i}.{k}` with the smallest `k` whose slot falls in the shard's range: a cluster whose slots are
split evenly over its masters (as `redis-cli --cluster create` splits them) gets the shards spread evenly too.
"""

from __future__ import annotations

from functools import cache

from redis.crc import key_slot

SLOTS = 16384


def shard_of(identifier: str, shards: int) -> int:
    """The shard an id belongs to: its cluster slot's range. Stable: it depends on nothing but the id and S."""
    return key_slot(identifier.encode()) * shards // SLOTS


@cache
def shard_tag(shard: int, shards: int) -> str:
    """The hash tag (without braces) shared by every key of shard `shard` of `shards`."""
    if not 0 <= shard < shards <= SLOTS:
        raise ValueError(f"shard {shard} of {shards}: need 0 <= shard < shards <= {SLOTS}")
    low, high = shard * SLOTS // shards, (shard + 1) * SLOTS // shards
    k = 0
    while not low <= key_slot(f"s{shard}.{k}".encode()) < high:
        k += 1  # CRC16 spreads consecutive suffixes: about `shards` tries
    return f"s{shard}.{k}"


def parse_shards(text: str, shards: int) -> list[int]:
    """Shard numbers from `0,2,5` or `0-3` (ranges inclusive); every one must be below `shards`."""
    chosen: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        first, dash, last = part.partition("-")
        try:
            numbers = range(int(first), int(last) + 1) if dash else range(int(first), int(first) + 1)
        except ValueError:
            raise ValueError(f"{part!r} is not a shard number or a range like 0-3") from None
        if not numbers or numbers[0] < 0 or numbers[-1] >= shards:
            raise ValueError(f"{part!r}: shards are numbered 0 to {shards - 1}")
        chosen.update(numbers)
    return sorted(chosen)
