"""A benchmark's private redis-server: started in a temporary directory, stopped whatever happens."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from services.local_redis import RedisServer, start_redis_server

T = TypeVar("T")


def on_private_server(measure: Callable[[RedisServer], Coroutine[Any, Any, T]]) -> T:
    """`measure(server)` run to completion against a redis-server of its own (never the shared one)."""
    with tempfile.TemporaryDirectory() as directory:
        server = start_redis_server(Path(directory))
        try:
            return asyncio.run(measure(server))
        finally:
            server.stop()
