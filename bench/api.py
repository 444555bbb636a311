"""Vehicle API benchmark: `GET /v2.0/vehicles/{id}/odometer` through the whole pipeline, side by side with
Stoplight Prism 5.16 serving the same OpenAPI document with static examples (not a test):

    .venv/bin/python -m bench.api [--rates 100,250,500] [--seconds 10] [--concurrency 32] [--json PATH]

Needs Prism in bench/.prism (`npm install --prefix bench/.prism @stoplight/prism-cli@5.16`; git-ignored) or
`--prism PATH`. Every server runs in its own process, apart from this load generator:

- fleetgate: a private redis-server, `fleetgate serve`, one `fleetgate gatekeeper run`, one `fleetgate vehicles
  serve`; an app, `--vehicles` BEVs connected for one user with read_odometer, and that user's access token from a
  code exchanged over HTTP. Each call is HTTP -> token -> connection -> XADD request -> gatekeeper -> decision ->
  vehicles service -> response -> HTTP body.
- Prism: `prism mock -d false` (static examples) on fleetgate's docs/contract/openapi.json, with an example added to
  the odometer's 200 response in this benchmark's copy (the document has none; Prism would answer distance 0).

Load: open loop at each of `--rates` (Poisson inter-arrival, or `--fixed`) for `--seconds`: a call is sent at its
scheduled time whether or not earlier ones have answered, and its latency counts from that scheduled time, so
queueing anywhere (client included) is not hidden. Then a closed loop: `--concurrency` clients as fast as they can.
The client is a minimal HTTP/1.1 keep-alive client on asyncio streams (a connection per call in flight).
Reports achieved calls/s, p50/p90/p99 latency, errors (not 200), CPU ms per call of the server processes
(/proc/<pid>/stat: fleetgate serve + gatekeeper + vehicles + redis-server; Prism's node) and this client's CPU.
For fleetgate it also times each call's stages from its pipeline request id (the `fleetgate-request-ids` header)
and the stream entry ids (Redis's clock, ms): scheduled -> request XADD -> decision -> response -> HTTP answer read.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx

from bench.results import write_results
from devtools.builders import make_vehicle
from devtools.workers import FLEETGATE
from schemas.application import AppMode
from services.local_redis import RedisServer, free_port, start_redis_server
from services.redis_client import connect
from services.registry import AppStore, ConnectService, Registry, TokenStore
from services.settings import Settings

PREFIX = "benchapi"
REDIRECT_URI = "http://127.0.0.1:9/callback"
USER = "bench-user"
ODOMETER = "/v2.0/vehicles/{vehicle_id}/odometer"
ODOMETER_EXAMPLE = {"distance": 32427.6}
IDS_HEADER = b"fleetgate-request-ids"
TICKS = os.sysconf("SC_CLK_TCK")
OPENAPI = Path(__file__).parent.parent / "docs" / "contract" / "openapi.json"
DEFAULT_PRISM = Path(__file__).parent / ".prism" / "node_modules" / ".bin" / "prism"
CALL_TIMEOUT_S = 30.0
STALE_S = 3.0
"""An idle connection older than this is not reused: uvicorn and Node close idle keep-alives after 5 s."""


# --- processes ----------------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def descendants(pid: int) -> list[int]:
    """The process and every live process below it (Prism's node may fork)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            child = int(stat.parent.name)
            children.setdefault(int(stat.read_text().rsplit(")", 1)[1].split()[1]), []).append(child)
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


@dataclass
class Processes:
    """Every process the benchmark starts, stopped (SIGTERM, then SIGKILL) in reverse order by `stop_all`."""

    started: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    redis: RedisServer | None = None

    def start(self, name: str, command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as output:  # the child keeps its own copy of the descriptor
            # Its own session: a Ctrl-C at the terminal reaches this program only, which stops them in order.
            process = subprocess.Popen(
                command, env=env, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        self.started.append((name, process))
        return process

    def check(self) -> None:
        for name, process in self.started:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}")

    def stop_all(self) -> None:
        for _name, process in reversed(self.started):
            if process.poll() is None:
                process.terminate()
        for _name, process in reversed(self.started):
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self.started.clear()
        if self.redis is not None:
            self.redis.stop()
            self.redis = None


def wait_for_line(log: Path, pattern: str, process: subprocess.Popen[bytes], timeout: float = 60) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := re.search(pattern, log.read_text(errors="replace"))) is not None:
            return found
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}: {log.read_text()[-2000:]}")
        time.sleep(0.05)
    raise RuntimeError(f"{pattern!r} not seen in {log} within {timeout} s")


# --- a minimal HTTP/1.1 keep-alive client ---------------------------------------------------------------------------


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def call(self, request: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *lines = head[:-4].split(b"\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        length = headers.get(b"content-length")
        if length is None:
            raise RuntimeError(f"no content-length in {head!r}")
        body = await self.reader.readexactly(int(length))
        return int(status_line.split(b" ", 2)[1]), headers, body

    def close(self) -> None:
        self.writer.close()


class Target:
    """An HTTP server under test, a pool of keep-alive connections to it (at most `max_connections`; a call waits
    for one beyond that, as wrk's fixed connections do), and the processes whose CPU it spends."""

    def __init__(
        self,
        name: str,
        port: int,
        pids: Callable[[], dict[str, list[int]]],
        requests: list[bytes],
        max_connections: int,
    ) -> None:
        self.name, self.port, self.pids, self.requests = name, port, pids, requests
        self.max_connections = max_connections
        self.idle: list[tuple[float, Connection]] = []  # (last used, connection), the most recently used last
        self.opened = 0
        self.waiters: deque[asyncio.Future[Connection]] = deque()
        self.next = 0

    async def _open(self) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        return Connection(reader, writer)

    async def warm(self, connections: int) -> None:
        for _ in range(connections):
            self.opened += 1
            self.release(await self._open())

    async def _acquire(self) -> Connection:
        loop = asyncio.get_running_loop()
        while self.idle:
            used, conn = self.idle.pop()
            if loop.time() - used < STALE_S:
                return conn
            self._discard(conn)  # the server may have closed it (both close idle keep-alives after 5 s)
        if self.opened < self.max_connections:
            self.opened += 1
            try:
                return await self._open()
            except BaseException:
                self.opened -= 1
                raise
        waiter: asyncio.Future[Connection] = loop.create_future()
        self.waiters.append(waiter)
        return await waiter

    def release(self, conn: Connection) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self.idle.append((asyncio.get_running_loop().time(), conn))

    def _discard(self, conn: Connection) -> None:
        conn.close()
        self.opened -= 1
        if self.waiters:  # a waiter would otherwise wait for a connection that is gone
            self.opened += 1
            asyncio.get_running_loop().create_task(self._reopen())

    async def _reopen(self) -> None:
        try:
            conn = await self._open()
        except OSError:
            self.opened -= 1
            return
        self.release(conn)

    async def call(self) -> tuple[int, dict[bytes, bytes], bytes]:
        """One call on a keep-alive connection; a broken one is dropped."""
        conn = await self._acquire()
        self.next += 1
        try:
            answer = await asyncio.wait_for(conn.call(self.requests[self.next % len(self.requests)]), CALL_TIMEOUT_S)
        except BaseException:
            self._discard(conn)
            raise
        self.release(conn)
        return answer

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each of the target's processes, by name."""
        return {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in self.pids().items()}

    def close(self) -> None:
        for _, conn in self.idle:
            conn.close()
        self.idle.clear()


def get_request(host: str, port: int, path: str, token: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()


# --- load ------------------------------------------------------------------------------------------------------------


@dataclass
class Sample:
    scheduled: float  # wall clock (time.time()) the call was due
    latency: float  # seconds from `scheduled` to the whole answer read
    status: int  # 0: no answer (connection error, timeout)
    request_ids: str = ""


class Meter:
    """The calls of one run, and the CPU the target's processes and this client spent on them."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.samples: list[Sample] = []
        self.failures: Counter[str] = Counter()
        loop = asyncio.get_running_loop()
        self.offset = time.time() - loop.time()  # loop clock -> wall clock, for the stream entry ids
        self.loop = loop
        self.cpu_before = target.cpu()
        self.client_cpu = time.process_time()
        self.started = loop.time()

    async def one(self, due: float) -> None:
        try:
            status, headers, _body = await self.target.call()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, RuntimeError, ValueError, IndexError) as exc:
            status, headers = 0, {}
            self.failures[type(exc).__name__] += 1
        if status not in {0, 200}:
            self.failures[f"HTTP {status}"] += 1
        ids = headers.get(IDS_HEADER, b"").decode()
        self.samples.append(Sample(due + self.offset, self.loop.time() - due, status, ids))

    def result(self, offered: float | None) -> dict[str, Any]:
        wall = self.loop.time() - self.started
        after = self.target.cpu()
        used = {name: after[name] - self.cpu_before.get(name, 0.0) for name in after}
        server_cpu = sum(used.values())
        client_cpu = time.process_time() - self.client_cpu
        latencies = sorted(s.latency for s in self.samples)
        ok = sum(1 for s in self.samples if s.status == 200)
        calls = len(self.samples)

        def pick(q: float) -> float:
            return 1000 * latencies[min(calls - 1, int(q * calls))] if calls else float("nan")

        return {
            "offered/s": offered if offered is not None else float("nan"),
            "calls": calls,
            "achieved/s": ok / wall,
            "p50 ms": pick(0.5),
            "p90 ms": pick(0.9),
            "p99 ms": pick(0.99),
            "max ms": 1000 * latencies[-1] if calls else float("nan"),
            "errors": calls - ok,
            "server CPU ms/call": 1000 * server_cpu / max(1, calls),
            "server CPU %": 100 * server_cpu / wall,
            "client CPU %": 100 * client_cpu / wall,
            **{f"{name} CPU ms/call": 1000 * cpu / max(1, calls) for name, cpu in used.items()},
            "failures": dict(self.failures),
        }


async def open_loop(target: Target, rate: float, seconds: float, *, poisson: bool, seed: int) -> Meter:
    """`rate` calls a second for `seconds`, each sent at its scheduled time; latency from that time."""
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    meter = Meter(target)
    tasks: list[asyncio.Task[None]] = []
    due = loop.time() + 0.01
    for _ in range(int(rate * seconds)):
        due += rng.expovariate(rate) if poisson else 1 / rate
        if (delay := due - loop.time()) > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(meter.one(due)))
    await asyncio.gather(*tasks)
    return meter


async def closed_loop(target: Target, concurrency: int, seconds: float) -> Meter:
    """`concurrency` clients, each calling again as soon as its answer is read, for `seconds`."""
    loop = asyncio.get_running_loop()
    meter = Meter(target)
    end = loop.time() + seconds

    async def client() -> None:
        while loop.time() < end:
            await meter.one(loop.time())

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return meter


# --- the two targets --------------------------------------------------------------------------------------------------


async def start_fleetgate(
    processes: Processes, directory: Path, vehicles: int, max_connections: int
) -> tuple[Target, Settings]:
    redis_server = start_redis_server(directory)
    processes.redis = redis_server
    settings = Settings(
        redis_url=redis_server.url, key_prefix=PREFIX, http_host="127.0.0.1", http_port=0,
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


# --- where fleetgate's time goes --------------------------------------------------------------------------------------


async def stream_times(settings: Settings, since: float) -> dict[str, dict[str, float]]:
    """request id -> the ms of its request, decision and response entries (their entry ids) from `since` (wall
    clock, s) on. Read after each run: the requests stream does not keep its entries for long."""
    redis = connect(settings.redis_url)
    shard = settings.keys.all_shards[0]
    times: dict[str, dict[str, float]] = {}
    marker = re.compile(rb'"request_id":"([^"]+)"')
    try:
        for stage, stream in (
            ("request", shard.requests),
            ("decision", shard.decisions),
            ("response", shard.responses),
        ):
            last = f"{int(since * 1000) - 1000}-0"
            first = True
            while True:
                entries = cast(
                    "list[tuple[bytes, dict[bytes, bytes]]]", await redis.xrange(stream, min=last, count=10_000)
                )
                if not first:
                    entries = entries[1:]
                first = False
                if not entries:
                    break
                for entry_id, fields in entries:
                    if (found := marker.search(fields.get(b"data", b""))) is not None:
                        times.setdefault(found[1].decode(), {})[stage] = int(entry_id.split(b"-")[0])
                last = entries[-1][0].decode()
    finally:
        await redis.aclose()
    return times


STAGES = (
    ("scheduled -> request XADD (client, HTTP, token, connection, outbox)", "scheduled", "request"),
    ("request -> decision (gatekeeper)", "request", "decision"),
    ("decision -> response (vehicles service)", "decision", "response"),
    ("response -> answer read (reader, body, HTTP)", "response", "done"),
)


def breakdown(samples: list[Sample], times: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per stage p50/p90/p99 (ms) over the calls that have all three entries; also those calls' latency split at p99."""
    rows: list[dict[str, float]] = []
    for sample in samples:
        entries = times.get(sample.request_ids)
        if sample.status != 200 or entries is None or len(entries) != 3:
            continue
        rows.append(
            {"scheduled": sample.scheduled * 1000, "done": (sample.scheduled + sample.latency) * 1000, **entries}
        )
    result: dict[str, dict[str, float]] = {}
    if not rows:
        return result
    slow = sorted(rows, key=lambda r: r["done"] - r["scheduled"])[int(0.99 * len(rows)) :]
    for name, start, end in STAGES:
        spans = sorted(r[end] - r[start] for r in rows)

        def pick(q: float, spans: list[float] = spans) -> float:
            return spans[min(len(spans) - 1, int(q * len(spans)))]

        result[name] = {"p50 ms": pick(0.5), "p90 ms": pick(0.9), "p99 ms": pick(0.99),
                        "mean of slowest 1 % ms": statistics.fmean(r[end] - r[start] for r in slow)}  # fmt: skip
    total = sorted(r["done"] - r["scheduled"] for r in rows)
    slowest = statistics.fmean(r["done"] - r["scheduled"] for r in slow)
    result["whole call"] = {"p50 ms": total[len(total) // 2], "p90 ms": total[int(0.9 * len(total))],
                            "p99 ms": total[min(len(total) - 1, int(0.99 * len(total)))],
                            "mean of slowest 1 % ms": slowest}  # fmt: skip
    return result


# --- the run ------------------------------------------------------------------------------------------------------


COLUMNS = ("offered/s", "achieved/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "server CPU ms/call",
           "server CPU %", "client CPU %")  # fmt: skip
PROCESS_COLUMNS = ("serve CPU ms/call", "gatekeeper CPU ms/call", "vehicles CPU ms/call", "redis CPU ms/call")
STAGE_COLUMNS = ("p50 ms", "p90 ms", "p99 ms", "mean of slowest 1 % ms")


def table(title: str, rows: dict[str, dict[str, float]], columns: tuple[str, ...]) -> None:
    width = max(len(name) for name in rows) + 2
    print(f"\n{title}")
    print(f"{'':<{width}}" + "".join(f"{c:>{len(c) + 2}}" for c in columns))
    for name, row in rows.items():
        print(f"{name:<{width}}" + "".join(f"{row.get(c, float('nan')):>{len(c) + 2},.1f}" for c in columns))


async def measure(args: argparse.Namespace, processes: Processes, directory: Path) -> dict[str, Any]:
    fleetgate, settings = await start_fleetgate(processes, directory, args.vehicles, args.max_connections)
    prism = start_prism(processes, directory, args.prism, args.max_connections)
    targets = (fleetgate, prism)
    answers = {}
    for target in targets:
        await target.warm(args.connections)
        answers[target.name] = await check_answer(target)
    print(f"answers: {answers}", flush=True)
    for target in targets:  # warm-up: caches, JIT, connections
        await open_loop(target, min(args.rates), args.warmup_seconds, poisson=False, seed=0)
        await closed_loop(target, args.concurrency, args.warmup_seconds / 2)
        processes.check()

    runs: dict[str, dict[str, Any]] = {}
    stages: dict[str, dict[str, dict[str, float]]] = {}
    for rate in args.rates:
        for target in targets:
            since = time.time()
            meter = await open_loop(target, rate, args.seconds, poisson=not args.fixed, seed=args.seed)
            name = f"{target.name} open {rate:g}/s"
            runs[name] = meter.result(rate)
            if target is fleetgate:
                stages[name] = breakdown(meter.samples, await stream_times(settings, since))
            print(f"{name}: {runs[name]}", flush=True)
            processes.check()
    for target in targets:
        since = time.time()
        meter = await closed_loop(target, args.concurrency, args.seconds)
        name = f"{target.name} closed x{args.concurrency}"
        runs[name] = meter.result(None)
        if target is fleetgate:
            stages[name] = breakdown(meter.samples, await stream_times(settings, since))
        print(f"{name}: {runs[name]}", flush=True)
        processes.check()

    closed = f"closed x{args.concurrency}"
    ratio = runs[f"fleetgate {closed}"]["achieved/s"] / runs[f"prism {closed}"]["achieved/s"]
    cpu_ratio = runs[f"fleetgate {closed}"]["server CPU ms/call"] / runs[f"prism {closed}"]["server CPU ms/call"]
    top = max(args.rates)
    p99_top = runs[f"fleetgate open {top:g}/s"]["p99 ms"]
    for target in targets:
        target.close()
    return {
        "parameters": {name: str(value) if isinstance(value, Path) else value for name, value in vars(args).items()},
        "answers": answers,
        "runs": runs,
        "stages": stages,
        "closed-loop throughput fleetgate/prism": ratio,
        "closed-loop server CPU per call fleetgate/prism": cpu_ratio,
        "targets": {
            "throughput >= 1x prism": ratio >= 1,
            f"p99 at {top:g}/s <= 25 ms": p99_top <= 25,
            f"p99 at {top:g}/s ms": p99_top,
        },
    }


def report(args: argparse.Namespace, results: dict[str, Any]) -> None:
    kind = "fixed" if args.fixed else "Poisson"
    table(
        f"GET /v2.0/vehicles/{{id}}/odometer: open loop ({kind} arrivals, {args.seconds:g} s a rate, latency from the "
        f"scheduled send), then closed loop ({args.concurrency} clients); server CPU: fleetgate = serve + gatekeeper "
        "+ vehicles + redis-server, prism = node",
        results["runs"],
        COLUMNS,
    )
    fleetgate = {name: row for name, row in results["runs"].items() if name.startswith("fleetgate")}
    table("fleetgate CPU ms per call, by process", fleetgate, PROCESS_COLUMNS)
    for name, stages in results["stages"].items():
        if stages:
            table(f"fleetgate stages, {name} (stream entry ids: ms resolution)", stages,
                  STAGE_COLUMNS)  # fmt: skip
    throughput = results["closed-loop throughput fleetgate/prism"]
    cpu = results["closed-loop server CPU per call fleetgate/prism"]
    print(
        f"\nclosed-loop throughput fleetgate/prism: {throughput:.2f} x; "
        f"server CPU per call fleetgate/prism: {cpu:.2f} x"
    )
    print(f"targets: {results['targets']}")


def parse_rates(text: str) -> list[float]:
    return [float(rate) for rate in text.split(",") if rate.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=parse_rates, default=[100.0, 250.0, 500.0], help="calls/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="per rate, and for the closed loop")
    parser.add_argument("--warmup-seconds", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=32, help="closed-loop clients")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections opened before the runs")
    parser.add_argument("--max-connections", type=int, default=256, help="per target; a call beyond waits for one")
    parser.add_argument("--vehicles", type=int, default=20)
    parser.add_argument("--fixed", action="store_true", help="fixed inter-arrival times (default: Poisson)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--prism", type=Path, default=DEFAULT_PRISM, help="the prism command (prism-cli 5.16)")
    parser.add_argument("--json", type=Path, default=Path("bench/results/api.json"))
    args = parser.parse_args()
    if not args.prism.exists() and shutil.which(str(args.prism)) is None:
        sys.exit(f"no prism at {args.prism}: npm install --prefix bench/.prism @stoplight/prism-cli@5.16")
    processes = Processes()
    with stopping_on_sigterm(), tempfile.TemporaryDirectory(prefix="bench-api-") as directory:
        try:
            results = asyncio.run(measure(args, processes, Path(directory)))
        finally:
            processes.stop_all()
            keep_logs(Path(directory), args.json.parent / "api-logs")
    report(args, results)
    write_results(args.json, results)


def keep_logs(directory: Path, into: Path) -> None:
    """The servers' logs (a 500's traceback is in serve.log), kept beside the results."""
    into.mkdir(parents=True, exist_ok=True)
    for log in directory.glob("*.log"):
        shutil.copy(log, into / log.name)
    print(f"logs in {into}")


@contextlib.contextmanager
def stopping_on_sigterm() -> Iterator[None]:
    """SIGTERM as Ctrl-C: the processes are stopped and the temporary directory removed either way."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    main()
