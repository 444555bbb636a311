"""A minimal HTTP/1.1 keep-alive client on asyncio streams: a pool of connections per server under test."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from bench.proc import cpu_seconds

CALL_TIMEOUT_S = 30.0
STALE_S = 3.0
"""An idle connection older than this is not reused: uvicorn and Node close idle keep-alives after 5 s."""


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def call(self, request: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *lines = head[:-4].split(b"\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        length = headers.get(b"content-length")
        if length is None:
            raise RuntimeError(f"no content-length in {head!r}")
        body = await self.reader.readexactly(int(length))
        return int(status_line.split(b" ", 2)[1]), headers, body

    def close(self) -> None:
        self.writer.close()


class Target:
    """An HTTP server under test, a pool of keep-alive connections to it (at most `max_connections`; a call waits
    for one beyond that, as wrk's fixed connections do), and the processes whose CPU it spends."""

    def __init__(
        self,
        name: str,
        port: int,
        pids: Callable[[], dict[str, list[int]]],
        requests: list[bytes],
        max_connections: int,
    ) -> None:
        self.name, self.port, self.pids, self.requests = name, port, pids, requests
        self.max_connections = max_connections
        self.idle: list[tuple[float, Connection]] = []  # (last used, connection), the most recently used last
        self.opened = 0
        self.waiters: deque[asyncio.Future[Connection]] = deque()
        self.next = 0

    async def _open(self) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        return Connection(reader, writer)

    async def warm(self, connections: int) -> None:
        for _ in range(connections):
            self.opened += 1
            self.release(await self._open())

    async def _acquire(self) -> Connection:
        loop = asyncio.get_running_loop()
        while self.idle:
            used, conn = self.idle.pop()
            if loop.time() - used < STALE_S:
                return conn
            self._discard(conn)  # the server may have closed it (both close idle keep-alives after 5 s)
        if self.opened < self.max_connections:
            self.opened += 1
            try:
                return await self._open()
            except BaseException:
                self.opened -= 1
                raise
        waiter: asyncio.Future[Connection] = loop.create_future()
        self.waiters.append(waiter)
        return await waiter

    def release(self, conn: Connection) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self.idle.append((asyncio.get_running_loop().time(), conn))

    def _discard(self, conn: Connection) -> None:
        conn.close()
        self.opened -= 1
        if self.waiters:  # a waiter would otherwise wait for a connection that is gone
            self.opened += 1
            asyncio.get_running_loop().create_task(self._reopen())

    async def _reopen(self) -> None:
        try:
            conn = await self._open()
        except OSError:
            self.opened -= 1
            return
        self.release(conn)

    async def call(self) -> tuple[int, dict[bytes, bytes], bytes]:
        """One call on a keep-alive connection; a broken one is dropped."""
        conn = await self._acquire()
        self.next += 1
        try:
            answer = await asyncio.wait_for(conn.call(self.requests[self.next % len(self.requests)]), CALL_TIMEOUT_S)
        except BaseException:
            self._discard(conn)
            raise
        self.release(conn)
        return answer

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each of the target's processes, by name."""
        return {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in self.pids().items()}

    def close(self) -> None:
        for _, conn in self.idle:
            conn.close()
        self.idle.clear()


def get_request(host: str, port: int, path: str, token: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()
