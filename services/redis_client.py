"""Opening Redis connections, and naming a server without leaking its password."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, cast
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    NoPermissionError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.errors import EvictionPolicyError

if TYPE_CHECKING:
    from services.settings import Settings

Client: TypeAlias = Redis | RedisCluster
"""A standalone Redis or a Redis Cluster: what everything but the gatekeeper's hot path talks to."""

REDIS_ERRORS: tuple[type[Exception], ...] = (RedisError, RedisClusterException)
"""What an unreachable Redis raises: redis-py's cluster client raises RedisClusterException, which is not a
RedisError, when none of the nodes it knows answers (a worker started while its startup node is down)."""

INFRASTRUCTURE_REPLIES = frozenset(
    {"OOM", "NOPERM", "READONLY", "LOADING", "BUSY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "MOVED", "ASK",
     "NOREPLICAS", "MISCONF", "NOGROUP", "NOSCRIPT", "NOAUTH", "WRONGPASS"}
)  # fmt: skip
"""Error replies that say the server cannot serve now (full, read-only, loading, failing over, denying access),
whatever the command's arguments: retried, never blamed on the entries being processed."""


def is_infrastructure_error(exc: BaseException) -> bool:
    """Whether a failure is Redis's, not the data's: the link (connection, timeout, no node answering) or an error
    reply of INFRASTRUCTURE_REPLIES. Anything else (a script's own `ERR ...`) may be caused by what was sent."""
    if isinstance(exc, RedisConnectionError | RedisTimeoutError | RedisClusterException):
        return True
    if isinstance(exc, OutOfMemoryError | NoPermissionError | ReadOnlyError | ClusterDownError | TryAgainError):
        return True  # redis-py drops the code from these classes' messages
    if isinstance(exc, AskError | NoScriptError):
        return True
    return isinstance(exc, ResponseError) and str(exc).split(" ", 1)[0] in INFRASTRUCTURE_REPLIES


POOL_SIZE = 100
"""Connections a client may open to one server (redis-py's default), unless told otherwise: what the commands and
services hold is a few. A gatekeeper worker sizes its pool from what it runs (gatekeeper/connections.py)."""

SOCKET_TIMEOUT_S = 10.0
"""How long a command may wait for its reply before the connection counts as dead (a blackholed network): the
default of `FLEETGATE_SOCKET_TIMEOUT_S`, and of clients opened without settings. Blocking reads get their block
time on top (`socket_timeout_for`)."""


def _options(socket_timeout_s: float, max_connections: int) -> dict[str, Any]:
    """Every connection fleetgate opens: RESP2 and bytes, bounded waits, TCP keepalive, idle connections checked;
    at most `max_connections` to each server."""
    return {
        "max_connections": max_connections,
        "decode_responses": False,
        "protocol": 2,
        "socket_timeout": socket_timeout_s,
        "socket_connect_timeout": min(socket_timeout_s, 5.0),
        "socket_keepalive": True,
        "health_check_interval": 30,
    }


def socket_timeout_for(settings: Settings) -> float:
    """The settings' socket timeout on top of the longest BLOCK they make a read wait, so that an idle stream never
    looks like a dead link and a dead link is noticed within the socket timeout of a read's end."""
    return settings.socket_timeout_s + settings.block_ms / 1000


def connect(
    url: str, socket_timeout_s: float = SOCKET_TIMEOUT_S, max_connections: int = POOL_SIZE, *, queue: bool = False
) -> Redis:
    """An asyncio client for `url` (bytes in, bytes out; hiredis parses replies when installed).

    RESP2, whatever the client library's default: redis-py 8 switched to RESP3, whose replies have other shapes
    (an XREADGROUP reply is a map, not a list), and the gatekeeper's hot path reads raw replies (gatekeeper/resp.py).
    With `queue`, a command finding every connection in use waits for one (up to the socket timeout) instead of
    failing: what a server answering many concurrent calls (the HTTP face) needs.
    """
    options = _options(socket_timeout_s, max_connections)
    if url.startswith("unix://"):
        del options["socket_keepalive"]  # a TCP option: redis-py's Unix socket connection refuses it
    if queue:
        return Redis.from_pool(BlockingConnectionPool.from_url(url, timeout=socket_timeout_s, **options))
    return Redis.from_url(url, **options)


def connect_cluster(
    url: str, socket_timeout_s: float = SOCKET_TIMEOUT_S, max_connections: int = POOL_SIZE
) -> RedisCluster:
    """A cluster client from a node's URL (it discovers the rest), with `connect`'s options (`max_connections` to
    each node).

    `redis://host1:7000,host2:7001/0` names several startup nodes: a process started while one of them is down
    (a master that just failed) still finds the cluster through another.
    """
    others = urlsplit(url).netloc.rpartition("@")[2].split(",")[1:]
    startup_nodes = [ClusterNode(*_host_and_port(address)) for address in others]
    options = _options(socket_timeout_s, max_connections)
    del options["health_check_interval"]  # the cluster client checks its nodes itself
    return RedisCluster.from_url(first_node_url(url), startup_nodes=startup_nodes or None, **options)


def first_node_url(url: str) -> str:
    """The URL with only its first host, for what takes one (`redis://a:1,b:2/0` -> `redis://a:1/0`)."""
    parts = urlsplit(url)
    if not parts.netloc:
        return url  # unix:///path: no host (and urlunsplit would drop its `//`)
    credentials, at, hosts = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{credentials}{at}{hosts.split(',')[0]}"))


def _host_and_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{address!r} in the Redis URL is not host:port")
    return host, int(port)


def client_for(
    settings: Settings, socket_timeout_s: float | None = None, max_connections: int = POOL_SIZE, *, queue: bool = False
) -> Client:
    """The client the settings ask for: a cluster client with `FLEETGATE_REDIS_CLUSTER`, else a standalone one
    (`queue`: see `connect`)."""
    timeout = socket_timeout_for(settings) if socket_timeout_s is None else socket_timeout_s
    return open_client(
        settings.redis_url,
        cluster=settings.redis_cluster,
        socket_timeout_s=timeout,
        max_connections=max_connections,
        queue=queue,
    )


def open_client(
    url: str,
    *,
    cluster: bool,
    socket_timeout_s: float = SOCKET_TIMEOUT_S,
    max_connections: int = POOL_SIZE,
    queue: bool = False,
) -> Client:
    """A cluster client for a node's URL, or a standalone client for the server's (the cluster client keeps its
    pools per node and does not queue)."""
    if cluster:
        return connect_cluster(url, socket_timeout_s, max_connections)
    return connect(url, socket_timeout_s, max_connections, queue=queue)


async def eviction_policies(client: Client) -> dict[str, str]:
    """Each server's (each master's, on a cluster) `maxmemory-policy`, from INFO (CONFIG may be disabled)."""
    if isinstance(client, RedisCluster):
        replies = await client.info("memory", target_nodes=RedisCluster.PRIMARIES)
        infos = cast("dict[str, dict[str, Any]]", replies)
    else:
        try:
            infos = {"server": await client.info("memory")}
        except ResponseError as exc:
            if "unknown command" not in str(exc):
                raise
            return {}  # the demo's embedded server (fakeredis) has no INFO, and never evicts
    return {node: str(info.get("maxmemory_policy", "noeviction")) for node, info in infos.items()}


async def refuse_eviction(client: Client, settings: Settings) -> None:
    """Raise EvictionPolicyError when a server may evict keys, unless `FLEETGATE_ALLOW_EVICTION` accepts it."""
    if settings.allow_eviction:
        return
    evicting = sorted({policy for policy in (await eviction_policies(client)).values() if policy != "noeviction"})
    if evicting:
        raise EvictionPolicyError(
            f"Redis at {redact(settings.redis_url)} evicts keys (maxmemory-policy {', '.join(evicting)}): fleetgate "
            "needs noeviction (CONFIG SET maxmemory-policy noeviction, or maxmemory-policy in redis.conf); "
            "FLEETGATE_ALLOW_EVICTION=true runs anyway, without exactly-once or a complete registry"
        )


async def client_limits(client: Client) -> dict[str, tuple[int, int]]:
    """Each server's (each master's, on a cluster) `maxclients` and how many clients it has now, by its name.

    From INFO clients (Redis 7 tells `maxclients` there), else CONFIG GET; a server that answers neither (the
    demo's fakeredis, a managed service that disables CONFIG) is left out: its limit is unknown.
    """
    try:
        infos = await _per_server(client, "INFO", "clients")
        limits = {node: info.get("maxclients") for node, info in infos.items()}
        if None in limits.values():
            configs = await _per_server(client, "CONFIG GET", "maxclients")
            limits = {node: configs.get(node, {}).get("maxclients") for node in infos}
    except ResponseError:
        return {}  # INFO or CONFIG unknown or refused
    return {node: (int(limit), int(infos[node]["connected_clients"])) for node, limit in limits.items() if limit}


async def _per_server(client: Client, command: str, argument: str) -> dict[str, dict[str, Any]]:
    """A command's parsed reply from each server (each master of a cluster, by node name)."""
    if isinstance(client, RedisCluster):
        replies = await client.execute_command(command, argument, target_nodes=RedisCluster.PRIMARIES)
        return cast("dict[str, dict[str, Any]]", replies)
    reply = await client.execute_command(command, argument)  # type: ignore[no-untyped-call]
    return {"server": cast("dict[str, Any]", reply)}


async def get_many(client: Client, keys: Sequence[str | bytes]) -> list[bytes | None]:
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
