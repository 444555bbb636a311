"""A client that queues for connections (the HTTP face's) against one that fails when its pool is exhausted."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import MaxConnectionsError

from services.local_redis import RedisServer
from services.redis_client import connect


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
