"""Where `fleetgate demo` gets a Redis when given none: a private redis-server if the binary is on PATH, else an
embedded Redis-protocol server in this process (fakeredis), so the demo runs on a machine with only Python.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fakeredis import TcpFakeServer

from services.local_redis import free_port, start_redis_server


@dataclass(frozen=True)
class DemoRedis:
    url: str
    description: str
    embedded: bool


@contextmanager
def demo_redis(*, embedded: bool = False) -> Iterator[DemoRedis]:
    """A Redis for the demo's lifetime, stopped and removed afterwards."""
    if not embedded and shutil.which("redis-server"):
        with tempfile.TemporaryDirectory(prefix="fleetgate-demo-") as directory:
            server = start_redis_server(Path(directory))
            try:
                yield DemoRedis(server.url, f"a private redis-server on port {server.port}", embedded=False)
            finally:
                server.stop()
        return
    with embedded_redis_server() as url:
        why = "asked for" if embedded else "no redis-server on PATH"
        yield DemoRedis(url, f"an embedded Redis-protocol server in this process (fakeredis; {why})", embedded=True)


@contextmanager
def embedded_redis_server() -> Iterator[str]:
    """fakeredis's TCP server on a free loopback port, served from a thread: Lua scripts and streams included."""
    port = free_port()
    server = TcpFakeServer(("127.0.0.1", port), server_type="redis", server_version=(7, 0))
    thread = threading.Thread(target=server.serve_forever, name="embedded-redis", daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.shutdown()
        server.server_close()
