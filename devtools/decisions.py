"""Decision entries as the gatekeeper writes them (its own encoder), for tests and benchmarks of what reads the
decisions streams: a reproducible mix of apps, outcomes, targets and vehicles."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime

from schemas import problems
from schemas.decision import Decision, rfc3339
from schemas.outbound import encode_decision
from schemas.problems import Outcome
from schemas.request_decoder import Request

TARGETS = (("odometer-traveleddistance", "read_odometer"), ("location-preciselocation", "read_location"),
           ("tractionbattery-stateofcharge", "read_battery"))  # fmt: skip
OUTCOME_WEIGHTS = {
    Outcome.ALLOWED: 70,
    Outcome.PERMISSION_DENIED: 15,
    Outcome.UNAUTHORIZED: 8,
    Outcome.VEHICLE_NOT_CAPABLE: 5,
    Outcome.REJECTED: 2,
}


def _decision(outcome: Outcome, target: str, permission: str) -> Decision:
    problem = {
        Outcome.ALLOWED: None,
        Outcome.PERMISSION_DENIED: problems.permission_denied(permission, f"signal {target}"),
        Outcome.UNAUTHORIZED: problems.UNAUTHORIZED,
        Outcome.VEHICLE_NOT_CAPABLE: problems.not_capable(f"signal {target}"),
        Outcome.REJECTED: problems.rejected("the request is not valid", parameter=True),
    }[outcome]
    return Decision(outcome, permission, problem)


def decision_payloads(app_ids: Sequence[str], count: int, *, seed: int = 1, vehicles: int = 50) -> list[bytes]:
    """`count` decisions' JSON, each of one of `app_ids` (at random), its outcome drawn by OUTCOME_WEIGHTS, one of
    three targets, one of `vehicles` vehicles per app (`{app}-v{n}`)."""
    rng = random.Random(seed)
    outcomes, weights = list(OUTCOME_WEIGHTS), list(OUTCOME_WEIGHTS.values())
    decisions = {(o, t): _decision(o, t, p) for o in outcomes for t, p in TARGETS}
    decided_at = rfc3339(datetime.now(UTC))
    payloads = []
    for n in range(count):
        app_id = rng.choice(app_ids)
        target, _permission = rng.choice(TARGETS)
        outcome = rng.choices(outcomes, weights)[0]
        vehicle_id = f"{app_id}-v{rng.randrange(vehicles)}"
        request = Request(f"req-{seed}-{n}", f"conn-{vehicle_id}", vehicle_id, "signal", target, decided_at)
        decision = decisions[outcome, target]
        payloads.append(encode_decision(decision, request, f"dec-{seed}-{n}", decided_at, app_id=app_id))
    return payloads
