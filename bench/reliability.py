"""Regenerate docs/reliability.md: run the reliability scenarios on private redis-servers and the reliability
test suite, and write the figures (not a test; about three minutes):

    .venv/bin/python -m bench.reliability [--out docs/reliability.md] [--json bench/results/reliability.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.reliability_doc import render
from devtools.crash_scenarios import PERSISTENCE, crash_redis, crash_workers, revocations_under_load
from devtools.operator_scenarios import lagging_consumer, registry_outage
from services.keyspace import Keys
from services.local_redis import start_redis_server
from services.redis_client import connect


async def revocation(trials: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        server = start_redis_server(Path(directory))
        redis = connect(server.url)
        try:
            delays = await revocations_under_load(redis, Keys("revoke"), server.url, trials)
        finally:
            await redis.aclose()
            server.stop()

    def pick(quantile: float) -> float:
        return 1000 * delays[min(len(delays) - 1, int(quantile * len(delays)))]

    return {"trials": trials, "p50 ms": pick(0.5), "p99 ms": pick(0.99), "max ms": 1000 * delays[-1]}


async def scenarios(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as directory:
        server = start_redis_server(Path(directory))
        redis = connect(server.url)
        try:
            outcome = await crash_workers(redis, Keys("kills"), server.url, requests=50_000, kills=5, seed=args.seed)
            results["worker kills"] = asdict(outcome) | {"lost": outcome.lost}
        finally:
            await redis.aclose()
            server.stop()
    results["redis crash"] = {}
    for mode in PERSISTENCE:
        with tempfile.TemporaryDirectory() as directory:
            outcome = await crash_redis(Path(directory), mode, requests=20_000)
            results["redis crash"][mode] = asdict(outcome) | {"lost": outcome.lost}
    results["revocation"] = await revocation(args.revocations)
    return results


async def operator_scenarios() -> dict[str, Any]:
    results: dict[str, Any] = {"lagging consumer": []}
    for hard_cap in (0, 10_000):
        with tempfile.TemporaryDirectory() as directory:
            figures = await lagging_consumer(Path(directory), requests=30_000, maxlen=5_000, hard_cap=hard_cap)
            results["lagging consumer"].append(figures)
    with tempfile.TemporaryDirectory() as directory:
        results["registry outage"] = await registry_outage(Path(directory), requests=2_000, outage_s=15)
    return results


def run_suite() -> dict[str, Any]:
    """The reliability tests, as pytest reports them."""
    with tempfile.TemporaryDirectory() as directory:
        report = Path(directory) / "junit.xml"
        started = time.perf_counter()
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-m",
            "reliability",
            f"--junitxml={report}",
            "-p",
            "no:cacheprovider",
        ]
        subprocess.run(command, check=False, capture_output=True)
        seconds = time.perf_counter() - started
        cases = ET.parse(report).getroot().iter("testcase")
        tests = {
            f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}": (
                "failed" if case.find("failure") is not None or case.find("error") is not None
                else "skipped" if case.find("skipped") is not None else "passed"
            )
            for case in cases
        }  # fmt: skip
    return {"seconds": seconds, "tests": tests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/reliability.md"))
    parser.add_argument("--json", type=Path, default=Path("bench/results/reliability.json"))
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--revocations", type=int, default=100)
    parser.add_argument("--render-only", action="store_true", help="Rewrite the doc from --json, running nothing.")
    parser.add_argument("--operator-only", action="store_true", help="Run only issue 14's scenarios; keep the rest.")
    args = parser.parse_args()
    if args.render_only:
        args.out.write_text(render(json.loads(args.json.read_text())))
        print(f"wrote {args.out} from {args.json}")
        return
    if args.operator_only:
        results = json.loads(args.json.read_text()) | asyncio.run(operator_scenarios())
    else:
        results = asyncio.run(scenarios(args)) | asyncio.run(operator_scenarios())
    results["suite"] = run_suite()
    results["machine"] = {"python": platform.python_version(), "date": time.strftime("%Y-%m-%d")}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    args.out.write_text(render(results))
    print(json.dumps({k: v for k, v in results.items() if k != "suite"}, indent=2))
    print(f"wrote {args.out} and {args.json}")


if __name__ == "__main__":
    main()
