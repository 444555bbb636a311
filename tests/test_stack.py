"""The local stack (docker-compose.yml): valid Compose, real metrics on the dashboard, and each fleetgate
service's exact command run as a process against a real redis-server, working together.

Docker cannot run on the machines that test this, so the containers' commands are run as processes instead.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from prometheus_client import REGISTRY
from redis.asyncio import Redis

import services.gatekeeper.metrics  # noqa: F401  (registers the metrics the dashboard must name)
import simulator.vehicles.metrics  # noqa: F401  (so do the vehicles service's)
from services.keyspace import Keys
from services.local_redis import RedisServer, free_port
from tests.reliability.conftest import read_stream

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
FLEETGATE = str(Path(sys.executable).with_name("fleetgate"))


def test_compose_file_follows_the_compose_specification() -> None:
    """docker-compose.yml validates against the Compose specification's JSON Schema (tests/data/compose_spec.json)."""
    schema = json.loads((ROOT / "tests/data/compose_spec.json").read_text())
    jsonschema.Draft201909Validator(schema).validate(COMPOSE)


def test_the_stack_has_what_it_promises() -> None:
    """Two gatekeeper replicas, the vehicles service and the HTTP face, each with a health check; the simulator
    waits for the gatekeepers and the vehicles; metrics are scraped from them and from the webhook worker."""
    services = COMPOSE["services"]
    assert set(services) == {
        *("redis", "gatekeeper", "vehicles", "http", "simulator", "audit", "webhooks", "prometheus", "grafana")
    }
    assert services["http"]["healthcheck"]["test"][:2] == ["CMD", "python"]
    assert services["vehicles"]["healthcheck"]["test"] == ["CMD", "fleetgate", "vehicles", "check"]
    assert services["simulator"]["depends_on"]["vehicles"]["condition"] == "service_healthy"
    gatekeeper = services["gatekeeper"]
    assert gatekeeper["deploy"]["replicas"] == 2
    assert gatekeeper["healthcheck"]["test"] == ["CMD", "fleetgate", "gatekeeper", "check"]
    assert services["simulator"]["depends_on"]["gatekeeper"]["condition"] == "service_healthy"
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    scrapes = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())["scrape_configs"]
    ports = {s["dns_sd_configs"][0]["names"][0]: s["dns_sd_configs"][0]["port"] for s in scrapes}
    assert ports == {
        name: int(services[name]["environment"]["FLEETGATE_METRICS_PORT"])
        for name in ("gatekeeper", "vehicles", "webhooks")
    }


def test_the_dashboard_queries_metrics_the_gatekeeper_exports() -> None:
    """Every metric named in the Grafana dashboard exists in the gatekeeper's Prometheus registry."""
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/fleetgate.json").read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    named = {m for e in expressions for m in re.findall(r"\bfleetgate_\w+", e)}
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    exported = {m.name + suffix for m in REGISTRY.collect() for suffix in suffixes.get(m.type, ("",))}
    assert named
    assert named <= exported, named - exported


def command_and_env(service: str, overrides: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The service's command as written (the image's `fleetgate` is this venv's) and its environment."""
    spec: dict[str, Any] = COMPOSE["services"][service]
    command = list(spec["command"])
    assert command[0] == "fleetgate"
    environment = {k: str(v) for k, v in spec["environment"].items()} | overrides
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETGATE_")} | environment
    return [FLEETGATE, *command[1:]], env


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


@pytest.mark.timeout(180)
async def test_the_stack_commands_work_together(
    redis: Redis, keys: Keys, redis_server: RedisServer, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """Two gatekeepers, the vehicles service, the audit consumer, the webhook worker and the simulator, as compose
    starts them: healthy, clean, audited, every ALLOWED decision answered once on the responses stream, and every
    service stopped cleanly by SIGTERM."""
    base = {"FLEETGATE_REDIS_URL": redis_server.url, "FLEETGATE_KEY_PREFIX": keys.prefix}
    metrics_ports = [free_port(), free_port()]
    for port in metrics_ports:  # two replicas on one host cannot share the container's port
        _start(processes, "gatekeeper", base | {"FLEETGATE_METRICS_PORT": str(port)})
    _, check_env = command_and_env("gatekeeper", base)
    health = [FLEETGATE, *COMPOSE["services"]["gatekeeper"]["healthcheck"]["test"][2:]]
    deadline = time.monotonic() + 30
    while subprocess.run(health, env=check_env, capture_output=True, check=False).returncode != 0:
        assert time.monotonic() < deadline, "the gatekeepers never became healthy"
        time.sleep(0.2)

    env = _start(processes, "vehicles", base | {"FLEETGATE_METRICS_PORT": str(free_port())})
    vehicles_health = [FLEETGATE, *COMPOSE["services"]["vehicles"]["healthcheck"]["test"][2:]]
    while subprocess.run(vehicles_health, env=env, capture_output=True, check=False).returncode != 0:
        assert time.monotonic() < deadline, "the vehicles service never became healthy"
        time.sleep(0.2)

    database = tmp_path / "audit.sqlite"
    _start(processes, "audit", base | {"FLEETGATE_AUDIT_DB": str(database)})
    webhooks_metrics = free_port()
    _start(processes, "webhooks", base | {"FLEETGATE_METRICS_PORT": str(webhooks_metrics)})

    loadtest = {
        "FLEETGATE_LOADTEST_VEHICLES": "300",
        "FLEETGATE_LOADTEST_RATE": "300",
        "FLEETGATE_LOADTEST_DURATION": "3",
    }
    command = [c if c != "/reports" else str(tmp_path / "reports") for c in command_and_env("simulator", {})[0]]
    _, env = command_and_env("simulator", base | loadtest)
    simulator = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert simulator.returncode == 0, simulator.stdout + simulator.stderr
    report = json.loads((tmp_path / "reports" / "report.json").read_text())
    accounting = report["accounting"]
    assert (accounting["lost"], accounting["duplicated"], accounting["mismatched"]) == (0, 0, 0)
    assert accounting["requests"] > 500
    assert (report["run"]["gatekeepers"], report["run"]["vehicle_services"]) == (0, 0)  # both external, as compose runs
    answers = report["responses"]["accounting"]
    assert (answers["lost"], answers["duplicated"], answers["mismatched"], answers["effects_violated"]) == (0, 0, 0, 0)
    assert answers["answered"] == answers["allowed"] == report["outcomes"]["ALLOWED"]

    for port in metrics_ports:
        assert "fleetgate_decisions_total{" in _scrape(port)  # both replicas decided some of the load
    assert "fleetgate_webhook_lag_seconds" in _scrape(webhooks_metrics)

    decisions = await redis.xlen(keys.decisions)
    deadline = time.monotonic() + 30
    while _audited(database) < decisions and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _audited(database) == decisions
    allowed = sum(1 for _, d in await read_stream(redis, keys.decisions) if d["outcome"] == "ALLOWED")
    deadline = time.monotonic() + 30
    while await redis.xlen(keys.shard(0).responses) < allowed and time.monotonic() < deadline:
        time.sleep(0.2)
    answered = [response["request_id"] for _, response in await read_stream(redis, keys.shard(0).responses)]
    assert len(answered) == len(set(answered)) == allowed > 0
    for process in processes:
        process.send_signal(signal.SIGTERM)
    assert [process.wait(30) for process in processes] == [0, 0, 0, 0, 0]


def _start(processes: list[subprocess.Popen[bytes]], service: str, overrides: dict[str, str]) -> dict[str, str]:
    """Start the service's command as compose would; its environment."""
    command, env = command_and_env(service, overrides)
    processes.append(subprocess.Popen(command, env=env))
    return env


def _scrape(port: int) -> str:
    return str(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode())


def _audited(database: Path) -> int:
    if not database.exists():
        return 0
    with sqlite3.connect(database) as db:
        try:
            return int(db.execute("SELECT count(*) FROM decisions").fetchone()[0])
        except sqlite3.OperationalError:  # the table is created on the consumer's first batch
            return 0


def test_the_http_service_command_serves_and_passes_its_health_check(
    redis_server: RedisServer, keys: Keys, processes: list[subprocess.Popen[bytes]]
) -> None:
    """`fleetgate serve` as compose runs it: its health check (run as written, on the test's port) passes, an
    unknown path is a Smartcar-shaped 404, and SIGTERM stops it cleanly."""
    port = free_port()
    base = {"FLEETGATE_REDIS_URL": redis_server.url, "FLEETGATE_KEY_PREFIX": keys.prefix}
    command, env = command_and_env("http", base | {"FLEETGATE_HTTP_PORT": str(port)})
    server = subprocess.Popen(command, env=env)
    processes.append(server)
    check = [sys.executable, *COMPOSE["services"]["http"]["healthcheck"]["test"][2:]]
    check = [c.replace(":8000/", f":{port}/") for c in check]
    deadline = time.monotonic() + 30
    while subprocess.run(check, capture_output=True, check=False).returncode != 0:
        assert server.poll() is None, "fleetgate serve exited"
        assert time.monotonic() < deadline, "fleetgate serve never became healthy"
        time.sleep(0.2)
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/v2.0/nowhere", timeout=5)
    assert missing.value.code == 404
    assert json.loads(missing.value.read())["type"] == "RESOURCE_NOT_FOUND"
    server.send_signal(signal.SIGTERM)
    assert server.wait(30) == 0
