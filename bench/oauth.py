"""Token endpoint benchmark on a private redis-server (not a test):

    .venv/bin/python -m bench.oauth [--calls 400] [--concurrency 8] [--json bench/results/oauth.json]

Serves the app with uvicorn in a thread of this process (its own event loop and Redis client) and calls
`POST /oauth/token` over loopback HTTP with httpx.AsyncClient, `--concurrency` calls in flight:

- authorization_code: codes issued directly with TokenStore, each exchanged once;
- refresh_token: pairs issued directly, each refresh token used once (a rotation per call);
- client_credentials: an application token per call;
- the round trip authorize -> code -> token: a whole Connect flow in test mode as a browser drives it (GET
  /oauth/authorize, the preamble, brand select, login and grant forms, the redirect with its code), then the
  code's exchange: 8 HTTP requests per flow, each flow a new test-mode account (so a new user and vehicle).

Each case reports calls/s (wall time) and CPU ms per call of the server's thread (time.thread_time read on the
server's own loop) and of the whole process (client included, time.process_time). Client and server share one
process and its GIL, so calls/s is a floor for a standalone `fleetgate serve`. The rate limits are set out of the way.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import re
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import uvicorn

from bench.results import write_results
from devtools.builders import make_vehicle
from schemas.application import AppMode
from services.http import HttpContext, create_app
from services.http.server import base_url, bind, make_server
from services.local_redis import start_redis_server
from services.redis_client import connect
from services.registry import AppStore, ConnectService, Registry, TokenStore
from services.settings import Settings
from simulator.accounts import SimulatorAccounts

REDIRECT_URI = "http://127.0.0.1:9/callback"
USERS = 50


class ServerThread:
    """The app on uvicorn in a thread with its own loop; `thread_cpu()` reads that thread's CPU time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sock = bind("127.0.0.1", 0)
        self.url = base_url(self.sock)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: uvicorn.Server | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="bench-server", daemon=True)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        client = connect(self.settings.redis_url)
        registry = Registry(client, self.settings.keys)
        self.server = make_server(create_app(HttpContext(self.settings, client, registry, SimulatorAccounts(registry))))
        try:
            await self.server.serve(sockets=[self.sock])
        finally:
            await client.aclose()

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not (self.server is not None and self.server.started):
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)

    def thread_cpu(self) -> float:
        async def read() -> float:
            return time.thread_time()

        assert self.loop is not None
        future: Future[float] = asyncio.run_coroutine_threadsafe(read(), self.loop)
        return future.result(5)

    def stop(self) -> None:
        assert self.server is not None
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


async def run_case(server: ServerThread, forms: list[dict[str, str]], auth: str, concurrency: int) -> dict[str, float]:
    """POST each form once, `concurrency` at a time; every answer must be 200."""
    latencies: list[float] = []
    queue = list(reversed(forms))
    headers = {"Authorization": auth}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    # TCP_NODELAY on the client too, as requests (the SDK's transport) sets it.
    transport = httpx.AsyncHTTPTransport(limits=limits, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    async with httpx.AsyncClient(base_url=server.url, headers=headers, transport=transport) as http:

        async def worker() -> None:
            while queue:
                form = queue.pop()
                started = time.perf_counter()
                response = await http.post("/oauth/token", data=form)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise RuntimeError(f"{response.status_code} {response.json().get('error')}")

        await http.get("/healthz")  # connections warm
        return await _timed(server, [worker() for _ in range(concurrency)], latencies)


async def _timed(server: ServerThread, workers: list[Awaitable[None]], latencies: list[float]) -> dict[str, float]:
    """Run the workers together; calls/s, CPU per call (the server's thread, the process) and latencies."""
    cpu_server, cpu_process, wall = server.thread_cpu(), time.process_time(), time.perf_counter()
    await asyncio.gather(*workers)
    wall = time.perf_counter() - wall
    cpu_process = time.process_time() - cpu_process
    cpu_server = server.thread_cpu() - cpu_server
    count = len(latencies)
    latencies.sort()
    return {
        "calls": count,
        "calls/s": count / wall,
        "server CPU ms/call": cpu_server * 1000 / count,
        "process CPU ms/call": cpu_process * 1000 / count,
        "p50 ms": statistics.median(latencies) * 1000,
        "p99 ms": latencies[int(0.99 * (count - 1))] * 1000,
    }


_INPUT = re.compile(r'<input[^>]*name="(vehicle|permission|nonce)"[^>]*value="([^"]*)"[^>]*>')


async def connect_flow(http: httpx.AsyncClient, app_id: str, n: int) -> str:
    """One Connect flow through its screens as a browser posts them; the code the redirect carries."""
    params = {"response_type": "code", "client_id": app_id, "redirect_uri": REDIRECT_URI, "state": f"s{n}"}
    params |= {"scope": "required:read_odometer read_vin", "mode": "test"}
    flow = _query((await http.get("/oauth/authorize", params=params)).headers["location"])["flow"]
    for path, screen in (
        ("preamble", {}),
        ("brand", {"make": "CHEVROLET"}),
        ("login", {"username": f"bench-{n}@example.com", "password": "pw"}),
    ):
        response = await http.post(f"/oauth/connect/{path}", data={"flow": flow, **screen})
        if response.status_code != 303:
            raise RuntimeError(f"{path}: {response.status_code}")
    grant = await http.get("/oauth/connect/grant", params={"flow": flow})
    fields: dict[str, list[str]] = {}
    for match in _INPUT.finditer(grant.text):
        if "disabled" not in match[0]:  # a browser posts no disabled input
            fields.setdefault(match[1], []).append(match[2])
    form: dict[str, str | list[str]] = {"flow": flow, "action": "approve", **fields}
    response = await http.post("/oauth/connect/grant", data=form)
    redirect = _query(response.headers.get("location", ""))
    if response.status_code != 302 or "code" not in redirect:
        raise RuntimeError(f"grant: {response.status_code} {redirect}")
    return redirect["code"]


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def run_flows(server: ServerThread, app_id: str, auth: str, count: int, concurrency: int) -> dict[str, float]:
    """`count` Connect flows and code exchanges, `concurrency` at a time; per flow: wall, CPU and latency."""
    latencies: list[float] = []
    pending = list(range(count))
    transport = httpx.AsyncHTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    async with httpx.AsyncClient(base_url=server.url, transport=transport) as http:

        async def worker() -> None:
            while pending:
                n = pending.pop()
                started = time.perf_counter()
                code = await connect_flow(http, app_id, n)
                form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
                response = await http.post("/oauth/token", data=form, headers={"Authorization": auth})
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise RuntimeError(f"token: {response.status_code}")

        await http.get("/healthz")
        return await _timed(server, [worker() for _ in range(concurrency)], latencies)


async def measure(settings: Settings, calls: int, concurrency: int) -> dict[str, dict[str, float]]:
    redis = connect(settings.redis_url)
    keys = settings.keys
    registry = Registry(redis, keys)
    tokens = TokenStore(redis, keys, settings.token_lifetimes)
    created = await AppStore(redis, keys).create("Bench", [REDIRECT_URI], AppMode.TEST)
    app_id = created.app.id
    connect_service = ConnectService(registry)
    for user in range(USERS):
        await registry.add_vehicle(make_vehicle(vehicle_id=f"veh-{user}"))
        await connect_service.connect(app_id, f"user-{user}", f"veh-{user}", scope="read_odometer read_vin")
    auth = "Basic " + base64.b64encode(f"{app_id}:{created.client_secret}".encode()).decode()
    server = ServerThread(settings)
    server.start()

    async def code_forms() -> list[dict[str, str]]:
        codes = [await tokens.issue_code(app_id, f"user-{i % USERS}", REDIRECT_URI) for i in range(calls)]
        return [{"grant_type": "authorization_code", "code": c, "redirect_uri": REDIRECT_URI} for c in codes]

    async def refresh_forms() -> list[dict[str, str]]:
        pairs = [await tokens.issue_pair(app_id, f"user-{i % USERS}") for i in range(calls)]
        return [{"grant_type": "refresh_token", "refresh_token": p.refresh_token} for p in pairs]

    async def credentials_forms() -> list[dict[str, str]]:
        return [{"grant_type": "client_credentials"} for _ in range(calls)]

    cases: dict[str, Callable[[], Awaitable[list[dict[str, str]]]]] = {
        "authorization_code (code -> tokens)": code_forms,
        "refresh_token (rotation)": refresh_forms,
        "client_credentials (app token)": credentials_forms,
    }
    results: dict[str, dict[str, float]] = {}
    try:
        await run_case(server, (await credentials_forms())[: max(20, calls // 10)], auth, concurrency)  # warm-up
        for name, forms in cases.items():
            results[name] = await run_case(server, await forms(), auth, concurrency)
        whole_flows = max(1, calls // 4)  # 8 requests each
        whole = await run_flows(server, app_id, auth, whole_flows, concurrency)
        results["authorize -> code -> token (whole flow)"] = whole
    finally:
        server.stop()
        await redis.aclose()
    return results


async def main_async(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as directory:
        redis_server = start_redis_server(Path(directory))
        settings = Settings(
            redis_url=redis_server.url,
            key_prefix="bench",
            token_rate_limit=1_000_000_000,
            login_rate_limit=1_000_000_000,
        )
        try:
            return await measure(settings, args.calls, args.concurrency)
        finally:
            redis_server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=400, help="calls per case")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", type=Path, default=Path("bench/results/oauth.json"))
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    columns = ["calls/s", "server CPU ms/call", "process CPU ms/call", "p50 ms", "p99 ms"]
    flows = args.calls // 4
    print(f"POST /oauth/token: {args.calls} calls per case ({flows} whole flows), {args.concurrency} in flight")
    print(f"{'case':<42}" + "".join(f"{c:>21}" for c in columns))
    for name, row in results.items():
        print(f"{name:<42}" + "".join(f"{row[c]:>21,.2f}" for c in columns))
    payload: dict[str, Any] = {"calls": args.calls, "concurrency": args.concurrency, "cases": results}
    write_results(args.json, payload)


if __name__ == "__main__":
    main()
