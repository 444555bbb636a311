"""The delivery tests' world (world.py) on the session's redis-server, with the pipeline running."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.keyspace import Keys
from services.local_redis import RedisServer
from services.redis_client import Client
from tests.webhooks.world import World, build, pipeline_running, world_settings


@pytest.fixture
async def world(redis: Client, keys: Keys, redis_server: RedisServer) -> AsyncIterator[World]:
    """The world built, and a gatekeeper and the vehicles service answering for the test's duration."""
    settings = world_settings(redis_server.url, keys)
    built = await build(redis, keys, settings)
    async with pipeline_running(settings, redis):
        yield built
