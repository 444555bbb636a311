"""The hot path's RESP transport: commands packed by hiredis and sent on a pooled redis-py connection, replies
left as the plain RESP2 lists hiredis parses.

redis-py packs every argument in Python and turns each stream entry into a dict: for a 500-entry batch that
was about a third of the worker's CPU (`python -m bench.gatekeeper`). Only XREADGROUP (of one stream, or of
every shard's on one server) and the COMMIT script go through here; everything else uses redis-py as usual, on
the same connection pool. On a Redis Cluster the commands go to the master of one shard's hash tag, on the
cluster client's own connections to that node.
This uses redis-py's connection internals (`send_packed_command`, `read_response`, a cluster node's
`acquire_connection`): pyproject.toml bounds redis-py to the major version it is tested on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, cast

import hiredis
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

Entry = tuple[bytes, dict[bytes, bytes]]
Arg = bytes | str | int | float


def _require_resp2(connection_kwargs: dict[str, Any]) -> None:
    """The replies are read as RESP2 shapes (an XREADGROUP reply is a list; in RESP3 it is a map)."""
    if str(connection_kwargs.get("protocol")) != "2":
        raise ValueError("the RESP transport reads RESP2 replies: open the client with protocol=2 (redis_client.py)")


class PackedTail:
    """A command's last arguments, packed as RESP as they are added, three at a time (a COMMIT's per entry).

    Packed as text, one f-string per entry, and encoded once for the whole command: the decision JSON is text,
    and encoding each part and then formatting bytes cost about twice as much per entry (hiredis.pack_command of
    a 500-entry COMMIT, which converts and sizes each argument in turn, six times as much).
    """

    __slots__ = ("count", "parts")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.count = 0

    def add_three(self, first: str, second: str, third: str) -> None:
        if first.isascii() and second.isascii() and third.isascii():  # a flag of the str: lengths are byte counts
            self.parts.append(f"${len(first)}\r\n{first}\r\n${len(second)}\r\n{second}\r\n${len(third)}\r\n{third}\r\n")
        else:
            self.parts += (f"${len(arg.encode())}\r\n{arg}\r\n" for arg in (first, second, third))
        self.count += 3

    def packed(self) -> bytes:
        return "".join(self.parts).encode()


def pack_command(args: Sequence[Arg], tail: PackedTail | None = None) -> list[bytes]:
    """One command as RESP: `args`, then `tail`'s arguments."""
    packed = hiredis.pack_command(tuple(args))  # type: ignore[arg-type]  # its stub types a 1-tuple; any length works
    if tail is None:
        return [packed]
    return [b"*%d\r\n%b" % (len(args) + tail.count, packed[packed.index(b"\n") + 1 :]), tail.packed()]


class RespTransport:
    """Commands on a standalone Redis's connection pool."""

    def __init__(self, redis: Redis) -> None:
        _require_resp2(redis.connection_pool.connection_kwargs)
        self.pool = redis.connection_pool

    async def _acquire(self) -> AbstractConnection:
        connection: AbstractConnection = await self.pool.get_connection()  # type: ignore[no-untyped-call]
        return connection

    async def _release(self, connection: AbstractConnection) -> None:
        await self.pool.release(connection)

    async def refresh(self) -> None:
        """After an error: learn where the data lives now (only a cluster's topology changes)."""

    async def call(self, *args: Arg, tail: PackedTail | None = None) -> Any:
        """One command (`args`, then `tail`'s arguments), its reply as hiredis parsed it; an error reply is raised as
        redis-py's exception."""
        packed = pack_command(args, tail)
        connection = await self._acquire()
        try:
            await connection.send_packed_command(packed, check_health=False)
            return await connection.read_response()
        except ResponseError:
            raise  # an error reply was read whole: the connection is fine
        except BaseException as exc:
            if (wrapped := await _failed(connection, exc, args[0])) is None:
                raise
            raise wrapped from exc
        finally:
            await self._release(connection)

    async def pipelined(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        """Several commands in one write, their replies in order. An error reply is raised as redis-py's exception
        (after it, the connection is dropped: the later replies were not read)."""
        packed = b"".join(hiredis.pack_command(tuple(command)) for command in commands)  # type: ignore[arg-type]
        connection = await self._acquire()
        replies: list[Any] = []
        try:
            await connection.send_packed_command(packed, check_health=False)
            for _ in commands:
                replies.append(await connection.read_response())
            return replies
        except ResponseError:
            if len(replies) + 1 < len(commands):
                await connection.disconnect()
            raise
        except BaseException as exc:
            if (wrapped := await _failed(connection, exc, commands[0][0])) is None:
                raise
            raise wrapped from exc
        finally:
            await self._release(connection)

    async def read_group(self, stream: str, group: str, consumer: str, count: int, block_ms: int) -> list[Entry]:
        """New entries for `consumer` (XREADGROUP ... >), waiting up to `block_ms` when there are none."""
        for _stream, entries in await self.read_groups([stream], group, consumer, count, block_ms):
            return entries
        return []

    async def read_groups(
        self, streams: Sequence[str], group: str, consumer: str, count: int, block_ms: int
    ) -> list[tuple[bytes, list[Entry]]]:
        """New entries for `consumer` on any of `streams` in one XREADGROUP (`STREAMS s1 s2 ... > > ...`), up to
        `count` per stream, waiting up to `block_ms` when none has any: each stream that has some, with them.

        One read, and so one connection, for a worker's every shard on one server; a Redis Cluster refuses it for
        streams of different slots (CROSSSLOT).
        """
        starts = [">"] * len(streams)
        command = ("XREADGROUP", "GROUP", group, consumer, "COUNT", count, "BLOCK", block_ms, "STREAMS")
        reply = await self.call(*command, *streams, *starts)
        if not reply:
            return []
        read = cast("list[tuple[bytes, list[tuple[bytes, list[bytes]]]]]", reply)
        return [
            (stream, [(entry_id, _as_dict(fields)) for entry_id, fields in entries])
            for stream, entries in read
            if entries
        ]


class ClusterRespTransport(RespTransport):
    """Commands to the master serving `route_key`'s slot on a Redis Cluster, found again after a failover."""

    def __init__(self, cluster: RedisCluster, route_key: str) -> None:
        # No pool of its own: the connections are the cluster client's, to whichever node serves the key now.
        _require_resp2(cluster.connection_kwargs)
        self.cluster = cluster
        self.route_key = route_key
        self._nodes: dict[AbstractConnection, ClusterNode] = {}

    async def _acquire(self) -> AbstractConnection:
        node = self.cluster.get_node_from_key(self.route_key)
        if node is None:
            raise ResponseError(f"CLUSTERDOWN no node serves the slot of {self.route_key}")
        connection = node.acquire_connection()
        self._nodes[connection] = node
        return connection

    async def _release(self, connection: AbstractConnection) -> None:
        self._nodes.pop(connection).release(connection)  # type: ignore[arg-type]

    async def refresh(self) -> None:
        # MOVED, a refused connection or CLUSTERDOWN: a failover or a resharding; read the slot map again.
        await self.cluster.nodes_manager.initialize()


async def _failed(connection: AbstractConnection, exc: BaseException, command: Arg) -> RedisConnectionError | None:
    """Drop the connection of a command that failed other than by an error reply (it may hold half a reply); the
    ConnectionError to raise instead of `exc`, or None to raise `exc` as it is."""
    torn_down = not connection.is_connected
    await connection.disconnect()
    if isinstance(exc, AttributeError) and torn_down:
        # A cluster client that reads its slot map again closes the connections of nodes that left it, those in
        # use included: a command in flight on one then fails inside redis-py with an AttributeError.
        return RedisConnectionError(f"connection torn down during {command!r}: {exc!r}")
    if isinstance(exc, OSError):  # the socket failed under redis-py without being wrapped in its ConnectionError
        return RedisConnectionError(f"connection failed during {command!r}: {exc!r}")
    return None  # cancelled, redis-py's own errors, or a programming error


def transport_for(redis: Redis | RedisCluster, route_key: str) -> RespTransport:
    """The hot path's transport to the server holding `route_key` (and every key sharing its hash tag)."""
    return ClusterRespTransport(redis, route_key) if isinstance(redis, RedisCluster) else RespTransport(redis)


def _as_dict(fields: list[bytes]) -> dict[bytes, bytes]:
    if len(fields) == 2:  # the contract's single `data` field: the common case, built directly
        return {fields[0]: fields[1]}
    return dict(zip(fields[::2], fields[1::2], strict=True))


class RespScript:
    """A Lua script run by EVALSHA, loaded on first use and again after a SCRIPT FLUSH or a server restart."""

    def __init__(self, transport: RespTransport, source: str) -> None:
        self.transport = transport
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, keys: list[str], args: list[Arg], tail: PackedTail | None = None) -> Any:
        """Run the script with `keys` and `args`, then `tail`'s arguments."""
        try:
            return await self.transport.call("EVALSHA", self.sha, len(keys), *keys, *args, tail=tail)
        except NoScriptError:
            await self.transport.call("SCRIPT", "LOAD", self.source)
            return await self.transport.call("EVALSHA", self.sha, len(keys), *keys, *args, tail=tail)
