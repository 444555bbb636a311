"""Fixtures for the Redis Cluster tests: one local cluster for the session, a fresh cluster client per test."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster

from services.local_cluster import RedisClusterProcesses, start_redis_cluster


def cluster_client_for(cluster: RedisClusterProcesses) -> RedisCluster:
    """A cluster client as the gatekeeper would open one: bytes in and out, RESP2 (see services/redis_client.py)."""
    return RedisCluster.from_url(cluster.url, decode_responses=False, protocol=2)


def _start(directory: Path) -> RedisClusterProcesses:
    missing = [name for name in ("redis-server", "redis-cli") if shutil.which(name) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not on PATH: the cluster tests start a local Redis Cluster with them")
    return start_redis_cluster(directory)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    """Three masters and three replicas for the whole session (tests keep apart by hash tag)."""
    cluster = _start(tmp_path_factory.mktemp("redis-cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture
def disposable_cluster(tmp_path: Path) -> Iterator[RedisClusterProcesses]:
    """A cluster of its own, for a test that kills nodes (the session cluster keeps its full topology)."""
    cluster = _start(tmp_path)
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
