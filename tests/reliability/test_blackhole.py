"""A network that silently drops packets (a half-open connection): the worker notices within its socket timeout,
says so, and decides everything once the network is back; the health check answers in bounded time (issue 14.4).

The test puts a TCP proxy of its own between the worker and redis-server; "blackholed", the proxy keeps every
connection open and reads what arrives, but forwards nothing either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from devtools.builders import TEST_TIMINGS, request_json
from devtools.workers import FLEETGATE, fleetgate_env
from services.gatekeeper.worker import Gatekeeper, serve
from services.keyspace import Keys
from services.local_redis import RedisServer, free_port
from services.redis_client import client_for
from services.settings import Settings
from tests.reliability.conftest import wait_until

pytestmark = [pytest.mark.reliability]


class Blackhole:
    """A loopback TCP proxy to `port` that can stop forwarding bytes without closing anything."""

    def __init__(self, port: int) -> None:
        self.upstream = port
        self.port = free_port()
        self.dropping = False
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def __aenter__(self) -> Blackhole:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self.server is not None
        self.server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), timeout=1)

    async def _connection(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        server_in, server_out = await asyncio.open_connection("127.0.0.1", self.upstream)
        pumps = [
            asyncio.create_task(self._pump(client_in, server_out)),
            asyncio.create_task(self._pump(server_in, client_out)),
        ]
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for pump in pumps:
            pump.cancel()
        for writer in (client_out, server_out):
            writer.close()

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(65536):
            if not self.dropping:
                sink.write(data)
                await sink.drain()


@pytest.fixture
async def direct(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url, protocol=2)
    yield client
    await client.aclose()


async def test_a_blackholed_network_is_noticed_and_survived(
    redis_server: RedisServer, direct: Redis, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    """Blackholed for 4 s with a 1 s socket timeout: the worker logs the dead connection within about 2 s, keeps
    retrying, and once the network is back decides every request sent meanwhile, each once."""
    caplog.set_level(logging.WARNING, logger="fleetgate")
    async with Blackhole(redis_server.port) as proxy:
        settings = Settings(redis_url=proxy.url, key_prefix=keys.prefix, **{**TEST_TIMINGS, "socket_timeout_s": 1})
        redis = client_for(settings)
        gatekeeper = Gatekeeper(settings, redis)
        worker = asyncio.create_task(serve(gatekeeper))
        try:
            await direct.xadd(keys.requests, {"data": request_json("before")})
            assert await wait_until(lambda: _decided(direct, keys, 1), timeout=10)
            proxy.dropping = True
            dropped_at = time.monotonic()
            for n in range(50):
                await direct.xadd(keys.requests, {"data": request_json(f"during-{n}")})
            assert await wait_until(lambda: _logged(caplog, "imeout"), timeout=5)
            noticed_s = time.monotonic() - dropped_at
            await asyncio.sleep(max(0.0, 4 - noticed_s))
            proxy.dropping = False
            assert await wait_until(lambda: _decided(direct, keys, 51), timeout=20)
        finally:
            gatekeeper.stop()
            await asyncio.wait_for(worker, timeout=20)
            await redis.aclose()
    assert noticed_s < 2.5
    assert int(await direct.xlen(keys.decisions)) == 51


async def test_the_health_check_answers_while_blackholed(redis_server: RedisServer, keys: Keys) -> None:
    """`fleetgate gatekeeper check` on a blackholed Redis says unhealthy within seconds instead of hanging."""
    async with Blackhole(redis_server.port) as proxy:
        proxy.dropping = True
        started = time.monotonic()
        check = await asyncio.create_subprocess_exec(
            FLEETGATE,
            "gatekeeper",
            "check",
            env=fleetgate_env(proxy.url, keys.prefix),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(check.communicate(), timeout=30)
        took_s = time.monotonic() - started
    assert check.returncode == 1, stderr  # unhealthy (container runtimes reserve exit 2)
    assert stderr.startswith(b"unhealthy: Redis at")
    assert took_s < 10
    assert b"Traceback" not in stderr


async def _decided(redis: Redis, keys: Keys, count: int) -> bool:
    return int(await redis.xlen(keys.decisions)) >= count


async def _logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return text in caplog.text
