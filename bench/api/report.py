"""The tables printed after a run."""

from __future__ import annotations

import argparse
from typing import Any

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


def report(args: argparse.Namespace, results: dict[str, Any]) -> None:
    kind = "fixed" if args.fixed else "Poisson"
    table(
        f"GET /v2.0/vehicles/{{id}}/odometer: open loop ({kind} arrivals, {args.seconds:g} s a rate, latency from the "
        f"scheduled send), then closed loops ({', '.join(map(str, args.concurrency))} clients, the median of "
        f"{args.repeat} rounds each); server "
        "CPU: fleetgate = serve + gatekeeper + vehicles + redis-server, prism = node",
        results["runs"],
        COLUMNS,
    )
    fleetgate = {name: row for name, row in results["runs"].items() if name.startswith("fleetgate")}
    table("fleetgate CPU ms per call, by process", fleetgate, PROCESS_COLUMNS)
    for name, stages in results["stages"].items():
        if stages:
            table(f"fleetgate stages, {name} (stream entry ids: ms resolution)", stages,
                  STAGE_COLUMNS)  # fmt: skip
    for concurrency, level in results["by concurrency"].items():
        rounds = ", ".join(f"{r:.2f}" for r in level["throughput fleetgate/prism, rounds"])
        print(
            f"\nclosed loop x{concurrency}: throughput fleetgate/prism {level['throughput fleetgate/prism']:.2f} x "
            f"(median of rounds: {rounds}); server CPU per call {level['server CPU per call fleetgate/prism']:.2f} x"
        )
    best = results["best concurrency"]
    print(
        f"throughput, each at its best level (fleetgate x{best['fleetgate']}, prism x{best['prism']}): fleetgate/prism "
        f"{results['closed-loop throughput fleetgate/prism']:.2f} x; server CPU per call "
        f"{results['closed-loop server CPU per call fleetgate/prism']:.2f} x"
    )
    print(f"targets: {results['targets']}")
