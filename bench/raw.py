"""A bare Redis connection for the benchmarks' own traffic: commands packed by hand, replies parsed by hiredis.

What a benchmark measures must not be bounded by its own client: redis-py builds each command and each reply's
dict in Python (about 10 µs per XADD or stream entry), hiredis and a byte join a fraction of that.
"""

from __future__ import annotations

import asyncio
from typing import Any

import hiredis


def pack(*args: bytes) -> bytes:
    """One command in RESP."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


class RawRedis:
    """One connection: `call` writes commands at once and reads their replies in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.parser = hiredis.Reader()

    @classmethod
    async def open(cls, host: str, port: int) -> RawRedis:
        return cls(*await asyncio.open_connection(host, port))

    async def call(self, commands: list[bytes]) -> list[Any]:
        self.writer.write(b"".join(commands))
        replies: list[Any] = []
        while len(replies) < len(commands):
            reply = self.parser.gets()
            if reply is False:
                self.parser.feed(await self.reader.read(1 << 20))
                continue
            replies.append(reply)
        return replies

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()
