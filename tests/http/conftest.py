"""Fixtures of the HTTP tier: the app on a real uvicorn server, and Debian's chromium driven by Playwright.

`http_server` runs `create_app` (with the simulator's accounts) on a free port in a background thread, against
the session's redis-server under the test's key prefix, so a test using it is marked `redis`. `chromium` is one
headless browser per test module; without chromium the test fails (never skips) and says how to install it.
Mark browser tests `browser`. Playwright is used directly (no pytest-playwright). Its sync API keeps an event
loop running on the main thread while it is open, and pytest-asyncio cannot start a test's loop then: so the
browser lives for one module at most, and a module of browser tests holds no async test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, sync_playwright

from services.http import HttpContext, create_app
from services.http.server import base_url, bind, make_server
from services.keyspace import Keys
from services.local_redis import RedisServer
from services.redis_client import connect
from services.registry import Registry
from services.settings import Settings
from simulator.accounts import SimulatorAccounts

CHROMIUM_ENV = "FLEETGATE_CHROMIUM"
START_TIMEOUT_S = 10.0


@pytest.fixture
def http_settings(redis_server: RedisServer, keys: Keys) -> Settings:
    """Settings of the test's server: the session's redis-server, the test's key prefix."""
    return Settings(redis_url=redis_server.url, key_prefix=keys.prefix, http_port=0)


@pytest.fixture
def http_server(http_settings: Settings) -> Iterator[str]:
    """The app served by uvicorn on 127.0.0.1 and a free port, in a thread with its own event loop and Redis
    client; yields its base URL (`http://127.0.0.1:PORT`) and stops it cleanly afterwards."""
    sock = bind("127.0.0.1", 0)
    servers: list[uvicorn.Server] = []
    failures: list[BaseException] = []

    async def main() -> None:
        client = connect(http_settings.redis_url)
        registry = Registry(client, http_settings.keys)
        server = make_server(create_app(HttpContext(http_settings, client, registry, SimulatorAccounts(registry))))
        servers.append(server)
        try:
            await server.serve(sockets=[sock])
        finally:
            await client.aclose()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported by the fixture, not lost in the thread
            failures.append(exc)

    thread = threading.Thread(target=run, name="http-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not (servers and servers[0].started):
        if failures or not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"the HTTP server did not start: {failures}")
        time.sleep(0.01)
    try:
        yield base_url(sock)
    finally:
        servers[0].should_exit = True
        thread.join(START_TIMEOUT_S)
        sock.close()
    assert not thread.is_alive(), "the HTTP server did not stop"
    assert not failures, failures


def chromium_executable() -> str:
    """$FLEETGATE_CHROMIUM, else Debian's chromium on PATH or in /usr/bin; fails (never skips) without one."""
    candidates = [os.environ.get(CHROMIUM_ENV), shutil.which("chromium"), "/usr/bin/chromium"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail(
        f"no chromium for the browser tests: `apt-get install -y chromium` (Debian), or set {CHROMIUM_ENV} "
        "to a Chromium executable (Playwright cannot download its own browsers here)",
        pytrace=False,
    )


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One headless Chromium for the module (`--no-sandbox`: the tests may run as root). Not session-wide: an
    open sync Playwright would break every async test after it (see the module's text)."""
    executable = chromium_executable()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()
