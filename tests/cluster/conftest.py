"""Fixtures for the Redis Cluster tests: a cluster client per test (the session's cluster: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster

from devtools.local_cluster import RedisClusterProcesses
from tests.conftest import start_cluster_or_skip


def cluster_client_for(cluster: RedisClusterProcesses) -> RedisCluster:
    """A cluster client as the gatekeeper would open one: bytes in and out, RESP2 (see services/redis_client.py)."""
    return RedisCluster.from_url(cluster.url, decode_responses=False, protocol=2)


@pytest.fixture
def disposable_cluster(tmp_path: Path) -> Iterator[RedisClusterProcesses]:
    """A cluster of its own, for a test that kills nodes (the session cluster keeps its full topology)."""
    cluster = start_cluster_or_skip(tmp_path)
    yield cluster
    cluster.stop()


@pytest.fixture
async def cluster_client(redis_cluster: RedisClusterProcesses) -> AsyncIterator[RedisCluster]:
    client = cluster_client_for(redis_cluster)
    # Read the topology now, as `async with` would: until then redis-py does not check a command's keys share a
    # slot (it sends the command and the server answers CROSSSLOT).
    await client.initialize()
    yield client
    await client.aclose()
