"""Micro-benchmark of the domain's hot path on one core (not a test: the machines are shared and noisy).

    .venv/bin/python -m bench.decide [--seconds 2] [--json bench/results/decide.json]

Measures, on a realistic mix of requests (mostly allowed, some denied, not capable, unauthorized or bad):
- decide() calls per second, requests already parsed;
- request round trips per second: decode the JSON bytes of a request, encode it again;
- decision round trips per second: build the decision message, encode it, decode it.
Prints a table and writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from schemas.catalog import get_catalog
from schemas.connection import Connection, ConnectionStatus
from schemas.decision import decide, rfc3339
from schemas.messages import DecisionMessage, ParamValue, RequestMessage, decode_request
from schemas.outbound import decision_message, encode_decision
from schemas.permissions import PermissionSet
from schemas.powertrain import Powertrain
from schemas.vehicle import Vehicle

NOW = datetime(2026, 11, 28, tzinfo=UTC)
POWERTRAIN_MIX = [Powertrain.ICE] * 40 + [Powertrain.HEV] * 15 + [Powertrain.PHEV] * 15 + [Powertrain.BEV] * 29
POWERTRAIN_MIX += [Powertrain.UNKNOWN]


def build_workload(size: int, seed: int) -> list[tuple[RequestMessage, Connection | None, Vehicle | None]]:
    """Requests over a small fleet whose connections grant most, not all, permissions."""
    rng = random.Random(seed)
    catalog = get_catalog()
    names = list(catalog.permission_names)
    targets = [("signal", s.code) for s in catalog.signals] + [("command", c.name) for c in catalog.commands]
    commands = {c.name: c for c in catalog.commands if c.params}
    fleet = []
    for i in range(200):
        powertrain = rng.choice(POWERTRAIN_MIX)
        vehicle = Vehicle.with_defaults(
            id=f"veh-{i}", vin="1HGCM82633A004352", make="Make", model="Model", year=2022, powertrain=powertrain
        )
        granted = PermissionSet.optional(n for n in names if rng.random() < 0.8)
        status = ConnectionStatus.REVOKED if rng.random() < 0.03 else ConnectionStatus.ACTIVE
        connection = Connection(
            id=f"conn-{i}", vehicle_id=vehicle.id, permissions=granted, status=status, created_at=NOW, updated_at=NOW
        )
        fleet.append((vehicle, connection))
    workload: list[tuple[RequestMessage, Connection | None, Vehicle | None]] = []
    for n in range(size):
        vehicle, connection = rng.choice(fleet)
        kind, target = rng.choice(targets)
        if rng.random() < 0.02:
            target += "-typo"
        params: dict[str, ParamValue] | None = None
        if kind == "command" and target in commands:
            # Valid arguments, but 2 % of the time none at all (REJECTED).
            params = commands[target].example_params if rng.random() > 0.02 else None
        request = RequestMessage(
            request_id=f"req-{n}",
            connection_id=connection.id,
            vehicle_id=vehicle.id,
            kind=kind,  # type: ignore[arg-type]
            target=target,
            issued_at=NOW,
            params=params,
        )
        known = rng.random() > 0.01
        workload.append((request, connection if known else None, vehicle))
    return workload


def rate(operation: Callable[[], int], seconds: float) -> float:
    """Operations per second: repeat `operation` (which reports how many it did) for about `seconds`."""
    done, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        done += operation()
    return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--size", type=int, default=10_000, help="requests in the workload")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=Path("bench/results/decide.json"))
    args = parser.parse_args()

    workload = build_workload(args.size, args.seed)
    outcomes = Counter(decide(*item).outcome.value for item in workload)
    request_bytes = [request.encode() for request, _, _ in workload]
    decisions = [(request, decide(request, c, v)) for request, c, v in workload]

    def nothing(*_: RequestMessage | Connection | Vehicle | None) -> None:
        return None

    def call_baseline() -> int:
        # The same loop calling a function that does nothing: what one Python call costs on this machine.
        for request, connection, vehicle in workload:
            nothing(request, connection, vehicle)
        return len(workload)

    def decide_all() -> int:
        for request, connection, vehicle in workload:
            decide(request, connection, vehicle)
        return len(workload)

    def request_round_trips() -> int:
        for data in request_bytes:
            decode_request(data).encode()
        return len(request_bytes)

    def decision_round_trips() -> int:
        for i, (request, decision) in enumerate(decisions):
            encoded = decision_message(decision, request, decision_id=str(i), decided_at=NOW).encode()
            DecisionMessage.model_validate_json(encoded)
        return len(decisions)

    decided_at = rfc3339(NOW)

    def decision_encodes() -> int:
        for i, (request, decision) in enumerate(decisions):
            encode_decision(decision, request, str(i), decided_at)
        return len(decisions)

    rows = {
        "baseline: empty function calls/s (same loop)": rate(call_baseline, args.seconds),
        "decide() calls/s": rate(decide_all, args.seconds),
        "request round trips/s (decode + encode)": rate(request_round_trips, args.seconds),
        "decision round trips/s (build + encode + decode)": rate(decision_round_trips, args.seconds),
        "decision encodes/s (encode_decision, the hot path)": rate(decision_encodes, args.seconds),
    }
    targets = {"decide() calls/s": 1_000_000, "request round trips/s (decode + encode)": 200_000}
    print(f"{'measure':<50} {'per second':>12} {'target':>10}")
    for name, value in rows.items():
        target = targets.get(name)
        print(f"{name:<50} {value:>12,.0f} {f'{target:,}' if target else '-':>10}")
    mix = ", ".join(f"{k} {v / len(workload):.0%}" for k, v in outcomes.most_common())
    print(f"outcome mix of the workload: {mix}")

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "python": platform.python_version(),
                "machine": platform.machine(),
                "workload": {"size": args.size, "seed": args.seed, "outcomes": dict(outcomes)},
                "per_second": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
