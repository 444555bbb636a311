"""Everything stored under a key prefix, as one text: for tests that check a secret is nowhere in clear."""

from __future__ import annotations

from redis.asyncio import Redis


async def stored_text(redis: Redis, prefix: str) -> str:
    """Every key under `prefix` and every value it holds (strings, sets, sorted sets, hashes), as text."""
    parts: list[str] = []
    for key in await redis.keys(f"{prefix}:*"):
        kind = await redis.type(key)
        if kind == b"string":
            value: object = await redis.get(key)
        elif kind == b"set":
            value = await redis.smembers(key)
        elif kind == b"zset":
            value = await redis.zrange(key, 0, -1)
        elif kind == b"hash":
            value = await redis.hgetall(key)
        else:
            value = kind
        parts.append(f"{key!r} {value!r}")
    return "\n".join(parts)
