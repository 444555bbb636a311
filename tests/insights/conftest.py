"""The advice and what-if tests that take a Redis run twice: on the session's redis-server unsharded, and on the
local Redis Cluster with six shards (the `deployment` fixture), where no command may raise CROSSSLOT. The pure
tests here (test_units.py) take none of these fixtures and run once."""

from __future__ import annotations

import pytest

from devtools.builders import TEST_TIMINGS
from services.keyspace import Keys
from services.redis_client import Client
from services.settings import Settings
from tests.deployment import Deployment


@pytest.fixture
def redis(deployment: Deployment) -> Client:
    return deployment.client


@pytest.fixture
def keys(deployment: Deployment) -> Keys:
    return deployment.keys


@pytest.fixture
def gatekeeper_settings(deployment: Deployment) -> Settings:
    """The deployment's settings with the test timings: quick reads (block_ms 50), a gatekeeper's or a usage
    consumer's."""
    return deployment.settings(**TEST_TIMINGS)
