"""The two servers under test: fleetgate's whole pipeline, and Prism serving the same OpenAPI document."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any, cast

import httpx

from bench.api.client import Target, get_request
from bench.api.processes import Processes, descendants, wait_for_line
from devtools.builders import make_vehicle
from devtools.workers import FLEETGATE
from schemas.application import AppMode
from services.local_redis import free_port, start_redis_server
from services.redis_client import connect
from services.registry import AppStore, ConnectService, Registry, TokenStore
from services.settings import Settings

PREFIX = "benchapi"
REDIRECT_URI = "http://127.0.0.1:9/callback"
USER = "bench-user"
ODOMETER = "/v2.0/vehicles/{vehicle_id}/odometer"
ODOMETER_EXAMPLE = {"distance": 32427.6}
OPENAPI = Path(__file__).parents[2] / "docs" / "contract" / "openapi.json"


async def start_fleetgate(
    processes: Processes, directory: Path, vehicles: int, max_connections: int, *, unix_socket: bool = False
) -> tuple[Target, Settings]:
    """fleetgate's processes on a private redis-server, reached over TCP or, with `unix_socket`, a Unix socket
    (what a one-host deployment can use: no loopback TCP stack on every command)."""
    socket_path = directory / "redis.sock"
    redis_server = start_redis_server(directory, *(["--unixsocket", str(socket_path)] if unix_socket else []))
    processes.redis = redis_server
    settings = Settings(
        redis_url=f"unix://{socket_path}" if unix_socket else redis_server.url,
        key_prefix=PREFIX, http_host="127.0.0.1", http_port=0,
        token_rate_limit=1_000_000_000, login_rate_limit=1_000_000_000,
    )  # fmt: skip
    env = settings.environment()
    serve_log = directory / "serve.log"
    serve = processes.start("fleetgate serve", [FLEETGATE, "serve"], env, serve_log)
    gatekeeper = processes.start("gatekeeper", [FLEETGATE, "gatekeeper", "run"], env, directory / "gatekeeper.log")
    sim = processes.start("vehicles", [FLEETGATE, "vehicles", "serve"], env, directory / "vehicles.log")
    port = int(wait_for_line(serve_log, r"fleetgate serving on http://127\.0\.0\.1:(\d+)", serve)[1])

    redis = connect(settings.redis_url)
    try:
        keys = settings.keys
        registry = Registry(redis, keys)
        created = await AppStore(redis, keys).create("Bench", [REDIRECT_URI], AppMode.TEST)
        app_id = created.app.id
        ids = [f"bench-{n:03d}" for n in range(vehicles)]
        for vehicle_id in ids:
            await registry.add_vehicle(make_vehicle(vehicle_id=vehicle_id))
            await ConnectService(registry).connect(app_id, USER, vehicle_id, scope="read_odometer")
        code = await TokenStore(redis, keys, settings.token_lifetimes).issue_code(app_id, USER, REDIRECT_URI)
    finally:
        await redis.aclose()
    auth = base64.b64encode(f"{app_id}:{created.client_secret}".encode()).decode()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
        answer = await http.post("/oauth/token", data=form, headers={"Authorization": f"Basic {auth}"})
        answer.raise_for_status()
        token = answer.json()["access_token"]
    pids = {"serve": [serve.pid], "gatekeeper": [gatekeeper.pid], "vehicles": [sim.pid]}
    pids["redis"] = [redis_server.process.pid]
    requests = [get_request("127.0.0.1", port, ODOMETER.format(vehicle_id=v), token) for v in ids]
    return Target("fleetgate", port, lambda: pids, requests, max_connections), settings


def openapi_document() -> dict[str, Any]:
    """The app's OpenAPI document (as docs/contract/openapi.json has it), with an example for the odometer's 200."""
    document = cast("dict[str, Any]", json.loads(OPENAPI.read_text()))
    content = document["paths"][ODOMETER]["get"]["responses"]["200"]["content"]["application/json"]
    content.setdefault("example", ODOMETER_EXAMPLE)
    return document


def start_prism(processes: Processes, directory: Path, prism: Path, max_connections: int) -> Target:
    spec = directory / "openapi.json"
    spec.write_text(json.dumps(openapi_document()))
    port = free_port()
    log = directory / "prism.log"
    # Errors only: Prism's default (info) logs several lines per request, which fleetgate (no access log) does not.
    command = [str(prism), "mock", "-d", "false", "-h", "127.0.0.1", "-p", str(port), "-v", "error", str(spec)]
    process = processes.start("prism", command, dict(os.environ), log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prism exited with {process.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            break
        time.sleep(0.1)
    requests = [get_request("127.0.0.1", port, ODOMETER.format(vehicle_id="bench-000"), "bench-token")]
    return Target("prism", port, lambda: {"node": descendants(process.pid)}, requests, max_connections)


async def check_answer(target: Target) -> dict[str, Any]:
    status, _headers, body = await target.call()
    if status != 200:
        raise RuntimeError(f"{target.name}: {status} {body[:300]!r}")
    return cast("dict[str, Any]", json.loads(body))
