"""A client that queues for connections (the HTTP face's) against one that fails when its pool is exhausted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis.exceptions import MaxConnectionsError

from services.gatekeeper.resp import RespTransport
from services.local_redis import RedisServer, start_redis_server
from services.redis_client import connect, first_node_url


async def test_a_queueing_client_serves_more_calls_than_connections(redis_server: RedisServer) -> None:
    """Three blocking commands over two connections all complete when the client queues (the third waits for a
    connection); without queueing the same load fails for want of one."""
    queued = connect(redis_server.url, max_connections=2, queue=True)
    failing = connect(redis_server.url, max_connections=2)
    try:
        assert await asyncio.gather(*(queued.blpop(["nothing"], timeout=0.2) for _ in range(3))) == [None] * 3
        with pytest.raises(MaxConnectionsError):
            await asyncio.gather(*(failing.blpop(["nothing"], timeout=0.2) for _ in range(3)))
    finally:
        await queued.aclose()
        await failing.aclose()


@pytest.mark.redis
@pytest.mark.parametrize("queue", [False, True])
async def test_a_unix_socket_url_connects(tmp_path: Path, queue: bool) -> None:
    """`unix://` is a Redis URL the settings accept: both kinds of client reach a server on its socket (TCP-only
    options such as keepalive are left out for it), the hot path's raw transport works on them, and the URL
    given the gatekeeper's broker stays whole."""
    socket_path = tmp_path / "redis.sock"
    server = start_redis_server(tmp_path, "--unixsocket", str(socket_path))
    url = f"unix://{socket_path}"
    assert first_node_url(url) == url  # what the gatekeeper's FastStream broker is given
    client = connect(url, queue=queue)
    try:
        assert await client.ping()
        assert await RespTransport(client).call("ECHO", "hi") == b"hi"
    finally:
        await client.aclose()
        server.stop()
