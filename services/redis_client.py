"""Opening Redis connections, and naming a server without leaking its password."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeAlias, cast
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException, RedisError

if TYPE_CHECKING:
    from services.settings import Settings

Client: TypeAlias = Redis | RedisCluster
"""A standalone Redis or a Redis Cluster: what everything but the gatekeeper's hot path talks to."""

REDIS_ERRORS: tuple[type[Exception], ...] = (RedisError, RedisClusterException)
"""What an unreachable Redis raises: redis-py's cluster client raises RedisClusterException, which is not a
RedisError, when none of the nodes it knows answers (a worker started while its startup node is down)."""


def connect(url: str) -> Redis:
    """An asyncio client for `url` (bytes in, bytes out; hiredis parses replies when installed).

    RESP2, whatever the client library's default: redis-py 8 switched to RESP3, whose replies have other shapes
    (an XREADGROUP reply is a map, not a list), and the gatekeeper's hot path reads raw replies (gatekeeper/resp.py).
    """
    return Redis.from_url(url, decode_responses=False, protocol=2)


def connect_cluster(url: str) -> RedisCluster:
    """A cluster client from a node's URL (it discovers the rest), with `connect`'s options.

    `redis://host1:7000,host2:7001/0` names several startup nodes: a process started while one of them is down
    (a master that just failed) still finds the cluster through another.
    """
    others = urlsplit(url).netloc.rpartition("@")[2].split(",")[1:]
    startup_nodes = [ClusterNode(*_host_and_port(address)) for address in others]
    return RedisCluster.from_url(
        first_node_url(url), startup_nodes=startup_nodes or None, decode_responses=False, protocol=2
    )


def first_node_url(url: str) -> str:
    """The URL with only its first host, for what takes one (`redis://a:1,b:2/0` -> `redis://a:1/0`)."""
    parts = urlsplit(url)
    credentials, at, hosts = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{credentials}{at}{hosts.split(',')[0]}"))


def _host_and_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{address!r} in the Redis URL is not host:port")
    return host, int(port)


def client_for(settings: Settings) -> Client:
    """The client the settings ask for: a cluster client with `FLEETGATE_REDIS_CLUSTER`, else a standalone one."""
    return open_client(settings.redis_url, cluster=settings.redis_cluster)


def open_client(url: str, *, cluster: bool) -> Client:
    """A cluster client for a node's URL, or a standalone client for the server's."""
    return connect_cluster(url) if cluster else connect(url)


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
    credentials, at, hosts = parts.netloc.rpartition("@")  # hosts: one, or several for a cluster
    user, colon, _password = credentials.partition(":")
    netloc = f"{user}:***@{hosts}" if colon else f"{credentials}{at}{hosts}"
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
