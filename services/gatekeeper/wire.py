"""The hot path's commands sent as hiredis-packed RESP on a pooled redis-py connection, replies left as plain lists.

redis-py packs every argument in Python and turns each stream entry into a dict: for a 500-entry batch that
was about a third of the worker's CPU (`python -m bench.gatekeeper`). Only XREADGROUP and the DECIDE script
go through here; everything else uses redis-py as usual, on the same connection pool.
"""

from __future__ import annotations

import hashlib
from typing import Any, cast

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError, ResponseError

Entry = tuple[bytes, dict[bytes, bytes]]
Arg = bytes | str | int | float


class Wire:
    def __init__(self, redis: Redis) -> None:
        self.pool = redis.connection_pool

    async def call(self, *args: Arg) -> Any:
        """One command, its reply as hiredis parsed it; an error reply is raised as redis-py's exception."""
        packed = hiredis.pack_command(args)  # type: ignore[arg-type]  # its stub types a 1-tuple; any length works
        connection: AbstractConnection = await self.pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await connection.send_packed_command(packed, check_health=False)
            return await connection.read_response()
        except ResponseError:
            raise  # an error reply was read whole: the connection is fine
        except BaseException:
            # Cancelled or failed mid-reply: the connection may hold half a reply; never reuse it.
            await connection.disconnect()
            raise
        finally:
            await self.pool.release(connection)

    async def read_group(self, stream: str, group: str, consumer: str, count: int, block_ms: int) -> list[Entry]:
        """New entries for `consumer` (XREADGROUP ... >), waiting up to `block_ms` when there are none."""
        reply = await self.call(
            "XREADGROUP", "GROUP", group, consumer, "COUNT", count, "BLOCK", block_ms, "STREAMS", stream, ">"
        )
        if not reply:
            return []
        entries = cast("list[tuple[bytes, list[bytes]]]", reply[0][1])
        return [(entry_id, _as_dict(fields)) for entry_id, fields in entries]


def _as_dict(fields: list[bytes]) -> dict[bytes, bytes]:
    if len(fields) == 2:  # the contract's single `data` field: the common case, built directly
        return {fields[0]: fields[1]}
    return dict(zip(fields[::2], fields[1::2], strict=True))


class WireScript:
    """A Lua script run by EVALSHA, loaded on first use and again after a SCRIPT FLUSH or a server restart."""

    def __init__(self, wire: Wire, source: str) -> None:
        self.wire = wire
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, keys: list[str], args: list[Arg]) -> Any:
        try:
            return await self.wire.call("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self.wire.call("SCRIPT", "LOAD", self.source)
            return await self.wire.call("EVALSHA", self.sha, len(keys), *keys, *args)
