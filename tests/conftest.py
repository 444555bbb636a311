"""The fixtures every tier shares: Redis servers and clusters, per-test key prefixes, registries, workers.

The `redis` and `cluster` marks are true by construction (`pytest_collection_modifyitems` below): a test that
uses a fixture starting or needing a redis-server, however indirectly, is marked `redis`; one that uses a cluster
fixture is marked `cluster` and `redis`. A test that starts redis-server itself carries the mark by hand. A test
without the `redis` mark finds a decoy redis-server and redis-cli first on PATH, and fails if it runs either
(`no_redis_server_unless_marked`), so `-m "not redis"` never needs, starts or silently skips a Redis.

Builders of domain objects (a vehicle, a connection, a request) are in devtools/builders.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from redis.asyncio import Redis

from devtools.builders import TEST_TIMINGS, make_vehicle
from devtools.local_cluster import RedisClusterProcesses, start_redis_cluster
from schemas.access import VehicleAccessConfig
from schemas.catalog import Catalog, get_catalog
from schemas.powertrain import Powertrain
from services.gatekeeper.worker import Gatekeeper, serve
from services.keyspace import Keys
from services.local_redis import RedisServer, start_redis_server
from services.redis_client import Client, connect
from services.registry import ConnectService, Registry
from services.settings import Settings
from tests.deployment import Deployment

REDIS_FIXTURES = frozenset({"redis_server", "redis_cluster", "disposable_cluster", "deployment"})
"""Fixtures that start or need a Redis: every fixture that takes one of these (`redis`, `registry`,
`connection_id`, `running_later`, `cluster_client`, ...) does too, and `item.fixturenames` is the closure."""
CLUSTER_FIXTURES = frozenset({"redis_cluster", "disposable_cluster"})
"""Fixtures that start or need a local Redis Cluster (`deployment` marks its own cluster case)."""
REDIS_BINARIES = ("redis-server", "redis-cli")
SESSION_PATH = os.environ.get("PATH", "")
"""PATH as the session found it, before any test's decoys."""


RELIABILITY_MODULE = "pytestmark = [pytest.mark.reliability"
"""How a module of the reliability suite alone starts its marks (tests/reliability/, the fuzzers)."""


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Modules of the reliability suite alone are not even imported when `-m` leaves the suite out (the fast tier's
    `not reliability`): importing them (hypothesis, schemathesis, schemas built at import) cost seconds."""
    if "not reliability" not in (config.option.markexpr or ""):
        return None
    if collection_path.suffix == ".py" and collection_path.name.startswith("test_"):
        return RELIABILITY_MODULE in collection_path.read_text(encoding="utf-8") or None
    return None


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `redis` every test that uses a Redis fixture, `cluster` (and so `redis`) every one using a cluster."""
    for item in items:
        uses = set(getattr(item, "fixturenames", ()))
        if uses & CLUSTER_FIXTURES and item.get_closest_marker("cluster") is None:
            item.add_marker(pytest.mark.cluster)
        needs_redis = bool(uses & REDIS_FIXTURES) or item.get_closest_marker("cluster") is not None
        if needs_redis and item.get_closest_marker("redis") is None:
            item.add_marker(pytest.mark.redis)


@pytest.fixture(scope="session")
def decoy_redis_binaries(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of `redis-server` and `redis-cli` scripts that record their call and exit 1."""
    directory = tmp_path_factory.mktemp("decoy-redis")
    for name in REDIS_BINARIES:
        script = directory / name
        script.write_text(
            "#!/bin/sh\n"
            f'echo "{name} $*" >> "{directory / "calls"}"\n'
            f'echo "{name}: called by a test without the redis mark (tests/conftest.py)" >&2\n'
            "exit 1\n"
        )
        script.chmod(0o755)
    return directory


@pytest.fixture(autouse=True)
def no_redis_server_unless_marked(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A test without the `redis` mark gets decoys for redis-server and redis-cli first on PATH (its own process
    and its subprocesses) and an unreachable FLEETGATE_REDIS_URL; it fails if it ran a decoy or took a Redis
    fixture by `request.getfixturevalue`."""
    if request.node.get_closest_marker("redis") is not None:
        yield
        return
    decoys: Path = request.getfixturevalue("decoy_redis_binaries")
    calls = decoys / "calls"
    calls.unlink(missing_ok=True)
    monkeypatch.setenv("PATH", f"{decoys}{os.pathsep}{os.environ.get('PATH', '')}")
    # Nothing listens on port 1: a connection made by default fails, instead of reaching a Redis on 6379.
    monkeypatch.setenv("FLEETGATE_REDIS_URL", "redis://127.0.0.1:1/0")
    yield
    ran = calls.read_text().splitlines() if calls.exists() else []
    taken = sorted(REDIS_FIXTURES.intersection(request.fixturenames))
    if ran or taken:
        pytest.fail(
            f"{request.node.nodeid} needs Redis (ran {ran}, took {taken}) but is not marked `redis`: "
            "mark it `@pytest.mark.redis`, or take a fixture from REDIS_FIXTURES (tests/conftest.py)",
            pytrace=False,
        )


@pytest.fixture
def catalog() -> Catalog:
    return get_catalog()


@contextlib.contextmanager
def session_path() -> Iterator[None]:
    """The session's PATH, without decoys, while a fixture starts servers: one that a test without the mark took
    by `getfixturevalue` (that test fails at teardown) still starts, instead of failing for every later test."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", SESSION_PATH)
        yield


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One private redis-server for the whole session (tests keep apart by key prefix)."""
    with session_path():
        server = start_redis_server(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


def start_cluster_or_skip(directory: Path) -> RedisClusterProcesses:
    with session_path():
        missing = [name for name in REDIS_BINARIES if shutil.which(name) is None]
        if missing:
            pytest.skip(f"{' and '.join(missing)} not on PATH: the cluster tests start a local Redis Cluster with them")
        return start_redis_cluster(directory)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    """Three masters and three replicas for the whole session (tests keep apart by key prefix)."""
    cluster = start_cluster_or_skip(tmp_path_factory.mktemp("redis-cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture(params=["redis", pytest.param("cluster", marks=pytest.mark.cluster)])
async def deployment(request: pytest.FixtureRequest, redis_server: RedisServer) -> AsyncIterator[Deployment]:
    """The session's redis-server with one shard, then the session's Redis Cluster with six (tests/deployment.py)."""
    if request.param != "cluster":
        opened = await Deployment.open("redis", redis_server.url, cluster=False)
        yield opened
        await opened.client.aclose()
        return
    cluster: RedisClusterProcesses = request.getfixturevalue("redis_cluster")
    caplog: pytest.LogCaptureFixture = request.getfixturevalue("caplog")
    crossslot_before = cluster.errors("CROSSSLOT")
    opened = await Deployment.open("cluster", cluster.url, cluster=True)
    yield opened
    await opened.client.aclose()
    # Every multi-key command of the test stayed in one slot. A worker's background job logs an error and goes
    # on, so look at the server's error counts (CROSSSLOT) and at the log (redis-py's own check, which refuses
    # such a command before sending it).
    assert cluster.errors("CROSSSLOT") == crossslot_before
    assert "same key slot" not in caplog.text


@pytest.fixture
def keys() -> Keys:
    """A fresh key prefix per test, so tests never see each other's data and nothing needs flushing."""
    return Keys(prefix=f"test-{uuid.uuid4().hex[:10]}")


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = connect(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
def registry(redis: Redis, keys: Keys) -> Registry:
    return Registry(redis, keys)


@pytest.fixture
def connect_service(registry: Registry) -> ConnectService:
    return ConnectService(registry)


@pytest.fixture
async def connection_id(registry: Registry, connect_service: ConnectService) -> str:
    """A BEV `bev` connected with read_battery and read_odometer granted (read_charge unchecked)."""
    await registry.add_vehicle(make_vehicle(Powertrain.BEV, vehicle_id="bev"))
    await registry.publish_config(
        VehicleAccessConfig.select(
            signals=["tractionbattery-stateofcharge", "odometer-traveleddistance", "charge-ischarging"]
        )
    )
    return (await connect_service.authorize("bev", unchecked=["read_charge"])).id


@pytest.fixture
def gatekeeper_settings(redis_server: RedisServer, keys: Keys) -> Settings:
    """Settings with the test timings, on the session's redis-server."""
    return Settings(redis_url=redis_server.url, key_prefix=keys.prefix, **TEST_TIMINGS)


@pytest.fixture
def running_later(
    redis: Client, gatekeeper_settings: Settings
) -> Callable[[], AbstractAsyncContextManager[Gatekeeper]]:
    """An async context manager that runs a gatekeeper worker for the block's duration, then stops it cleanly."""

    @contextlib.asynccontextmanager
    async def run() -> AsyncIterator[Gatekeeper]:
        gatekeeper = Gatekeeper(gatekeeper_settings, redis)
        task = asyncio.create_task(serve(gatekeeper))
        try:
            yield gatekeeper
        finally:
            gatekeeper.stop()
            await asyncio.wait_for(task, timeout=10)

    return run
