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
queueing anywhere (client included) is not hidden. Then closed loops at each `--concurrency` level (32, 64, 128
clients by default), `--repeat` rounds alternating fleetgate and Prism (the table shows each target's median round
per level). The throughput ratio compares each target at its best level (bench/api/closed.py says why); the
per-level ratios are printed too.
The client is a minimal HTTP/1.1 keep-alive client on asyncio streams, on uvloop (a connection per call in
flight). `--unix-socket`: fleetgate's processes reach their redis-server on a Unix socket instead of loopback TCP.
Reports achieved calls/s, p50/p90/p99 latency, errors (not 200), CPU ms per call of the server processes
(/proc/<pid>/stat: fleetgate serve + gatekeeper + vehicles + redis-server; Prism's node) and this client's CPU.
For fleetgate it also times each call's stages from its pipeline request id (the `fleetgate-request-ids` header)
and the stream entry ids (Redis's clock, ms): scheduled -> request XADD -> decision -> response -> HTTP answer read.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.api.closed import summary, sweep
from bench.api.load import closed_loop, open_loop
from bench.api.processes import Processes, keep_logs, stopping_on_sigterm
from bench.api.report import report
from bench.api.stages import breakdown, stream_times
from bench.api.targets import check_answer, start_fleetgate, start_prism
from bench.results import write_results
from services.eventloop import run_loop

DEFAULT_PRISM = Path(__file__).parents[1] / ".prism" / "node_modules" / ".bin" / "prism"


async def measure(args: argparse.Namespace, processes: Processes, directory: Path) -> dict[str, Any]:
    fleetgate, settings = await start_fleetgate(
        processes, directory, args.vehicles, args.max_connections, unix_socket=args.unix_socket
    )
    prism = start_prism(processes, directory, args.prism, args.max_connections)
    targets = (fleetgate, prism)
    answers = {}
    for target in targets:
        await target.warm(args.connections)
        answers[target.name] = await check_answer(target)
    print(f"answers: {answers}", flush=True)
    for target in targets:  # warm-up: caches, JIT, connections
        await open_loop(target, min(args.rates), args.warmup_seconds, poisson=False, seed=0)
        await closed_loop(target, min(args.concurrency), args.warmup_seconds / 2)
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
    levels = await sweep(
        targets, args.concurrency, repeat=args.repeat, seconds=args.seconds, settings=settings, check=processes.check
    )
    for level in levels:
        for target in targets:
            result, times = level.median_run(target.name)
            runs[f"{target.name} closed x{level.concurrency}"] = result
            if times:
                stages[f"fleetgate closed x{level.concurrency}"] = times
    closed = summary(levels)
    top = max(args.rates)
    p99_top = runs[f"fleetgate open {top:g}/s"]["p99 ms"]
    for target in targets:
        target.close()
    return {
        "parameters": {name: str(value) if isinstance(value, Path) else value for name, value in vars(args).items()},
        "answers": answers,
        "runs": runs,
        "stages": stages,
        **closed,
        "targets": {
            "throughput >= 1x prism": closed["closed-loop throughput fleetgate/prism"] >= 1,
            f"p99 at {top:g}/s <= 25 ms": p99_top <= 25,
            f"p99 at {top:g}/s ms": p99_top,
        },
    }


def parse_rates(text: str) -> list[float]:
    return [float(rate) for rate in text.split(",") if rate.strip()]


def parse_levels(text: str) -> list[int]:
    return [int(level) for level in text.split(",") if level.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=parse_rates, default=[100.0, 250.0, 500.0], help="calls/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="per rate, and for the closed loop")
    parser.add_argument("--warmup-seconds", type=float, default=4.0)
    parser.add_argument(
        "--concurrency", type=parse_levels, default=[32, 64, 128], help="closed-loop clients, comma-separated levels"
    )
    parser.add_argument("--repeat", type=int, default=3, help="closed-loop rounds per level, alternating the targets")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections opened before the runs")
    parser.add_argument("--max-connections", type=int, default=256, help="per target; a call beyond waits for one")
    parser.add_argument("--vehicles", type=int, default=20)
    parser.add_argument("--unix-socket", action="store_true", help="fleetgate reaches Redis on a Unix socket")
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
            results = run_loop(measure(args, processes, Path(directory)))
        finally:
            processes.stop_all()
            keep_logs(Path(directory), args.json.parent / "api-logs")
    report(args, results)
    write_results(args.json, results)
