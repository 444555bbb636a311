"""Opening Redis connections, and naming a server without leaking its password."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeAlias, cast
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

if TYPE_CHECKING:
    from services.settings import Settings

Client: TypeAlias = Redis | RedisCluster
"""A standalone Redis or a Redis Cluster: what everything but the gatekeeper's hot path talks to."""


def connect(url: str) -> Redis:
    """An asyncio client for `url` (bytes in, bytes out; hiredis parses replies when installed).

    RESP2, whatever the client library's default: redis-py 8 switched to RESP3, whose replies have other shapes
    (an XREADGROUP reply is a map, not a list), and the gatekeeper's hot path reads raw replies (wire.py).
    """
    return Redis.from_url(url, decode_responses=False, protocol=2)


def connect_cluster(url: str) -> RedisCluster:
    """A cluster client from any node's URL (it discovers the rest), with `connect`'s options."""
    return RedisCluster.from_url(url, decode_responses=False, protocol=2)


def client_for(settings: Settings) -> Client:
    """The client the settings ask for: a cluster client with `FLEETGATE_REDIS_CLUSTER`, else a standalone one."""
    return connect_cluster(settings.redis_url) if settings.redis_cluster else connect(settings.redis_url)


async def get_many(client: Client, keys: Sequence[str]) -> list[bytes | None]:
    """GET of many keys in one round trip per server: MGET, or one MGET per slot on a cluster (not atomic)."""
    if not keys:
        return []
    if isinstance(client, RedisCluster):
        found = await client.mget_nonatomic(list(keys))
    else:
        found = await client.mget(list(keys))
    return cast("list[bytes | None]", found)  # bytes: the clients are opened with decode_responses=False


def redact(url: str) -> str:
    """The URL with any password (in the user part or a `password=` query parameter) replaced by `***`."""
    parts = urlsplit(url)
    query = "&".join(
        f"{name}=***" if name.lower() == "password" else f"{name}={value}" if sep else name
        for name, sep, value in (pair.partition("=") for pair in parts.query.split("&") if pair)
    )
    netloc = parts.netloc
    if parts.password is not None:
        user = parts.username or ""
        host = parts.hostname or ""
        netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
