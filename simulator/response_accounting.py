"""Matching every vehicle response to an ALLOWED decision: lost, duplicated, mismatched; command effects; end-to-end
latency; outcomes by code.

Each ALLOWED decision must get exactly one response on `{prefix}:responses`, and no other request any. The
decision reader reports ALLOWED request ids, the response reader the responses, in any order (each stream has its
reader); the verdict is drawn at the end. Nothing here touches Redis.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

from simulator.accounting import Accountant
from simulator.effects import EffectChecker, EffectRules, Violation
from simulator.histogram import LatencyHistogram
from simulator.report import Latency, ResponseAccounting, ResponseProblem, Responses, Second

EXAMPLES_EACH = 5
"""Examples kept of each problem (lost, duplicated, mismatched, effect)."""
NO_CODE = "(no code)"
NO_REQUEST_ID = "(no request id)"
"""What a response that names no request (not even JSON) is counted under: mismatched."""


class ResponseAccountant:
    """Counts the responses of one load test against the ALLOWED decisions its `requests` accountant saw."""

    def __init__(self, requests: Accountant, rules: EffectRules) -> None:
        self.requests = requests
        self._vehicles = {vehicle.id: vehicle for vehicle in requests.world.vehicles}
        self._allowed: set[str] = set()
        self._responses: dict[str, int] = {}
        self.answered = 0
        """ALLOWED requests with a response (so far)."""
        self.read = 0
        """First responses read."""
        self.duplicated = 0
        self._duplicates: list[ResponseProblem] = []
        self._unresolved: list[tuple[str, float]] = []
        self.latency = LatencyHistogram()
        self._latency_per_second: dict[int, LatencyHistogram] = defaultdict(LatencyHistogram)
        self._answered_per_second: Counter[int] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.by_powertrain: dict[str, Counter[str]] = defaultdict(Counter)
        self.effects = EffectChecker(rules)

    def on_allowed(self, request_id: str) -> None:
        """An ALLOWED decision was read for this request (again, if the gatekeeper doubled it: counted once)."""
        if request_id not in self._allowed:
            self._allowed.add(request_id)
            self.answered += request_id in self._responses

    def on_response(self, response: dict[str, Any], read_at: float) -> None:
        """A response read from its shard's stream (in stream order) at `read_at` (epoch seconds)."""
        request_id = str(response.get("request_id") or NO_REQUEST_ID)
        count = self._responses.get(request_id, 0) + 1
        self._responses[request_id] = count
        if count > 1:
            self.duplicated += count == 2
            if count == 2 and len(self._duplicates) < EXAMPLES_EACH:
                self._duplicates.append(_problem(request_id, "duplicated", response))
            return
        self.read += 1
        self.answered += request_id in self._allowed
        code = _code(response)
        self.outcomes[code] += 1
        vehicle = self._vehicles.get(str(response.get("vehicle_id")))
        self.by_powertrain[vehicle.powertrain.value if vehicle else "(not in the fleet)"][code] += 1
        self.effects.observe(response)
        self._answered_per_second[self._second(read_at)] += 1
        issued = self.requests.issued_at(request_id)
        if issued is None:  # read before its producer reported it: measured at the end
            self._unresolved.append((request_id, read_at))
        else:
            self._record(issued, read_at)

    def _record(self, issued: float, read_at: float) -> None:
        latency_ms = 1000 * (read_at - issued)
        self.latency.record(latency_ms)
        self._latency_per_second[self._second(read_at)].record(latency_ms)

    def _second(self, at: float) -> int:
        return max(0, int(at - self.requests.started_at))

    @property
    def pending(self) -> int:
        """ALLOWED and not yet answered."""
        return len(self._allowed) - self.answered

    def accounting(self) -> ResponseAccounting:
        """The final count: call once every reader has stopped."""
        for request_id, read_at in self._unresolved:
            issued = self.requests.issued_at(request_id)
            if issued is not None:
                self._record(issued, read_at)
        self._unresolved.clear()
        lost = [r for r in self._allowed if r not in self._responses]
        mismatched = [r for r in self._responses if r not in self._allowed]
        effects = self.effects.check(self.requests.issued_at)
        examples = [
            *(self._sent_problem(r, "lost") for r in sorted(lost)[:EXAMPLES_EACH]),
            *self._duplicates,
            *(self._sent_problem(r, "mismatched") for r in sorted(mismatched)[:EXAMPLES_EACH]),
            *(_violation(v) for v in effects.violations[:EXAMPLES_EACH]),
        ]
        return ResponseAccounting(
            allowed=len(self._allowed),
            answered=self.answered,
            lost=len(lost),
            duplicated=self.duplicated,
            mismatched=len(mismatched),
            effects_checked=effects.checked,
            effects_violated=len(effects.violations),
            examples=examples,
        )

    def _sent_problem(self, request_id: str, problem: str) -> ResponseProblem:
        sent = self.requests.sent_record(request_id)
        if sent is None:
            return ResponseProblem(request_id=request_id, problem=problem, target="", vehicle_id="",
                                   detail="no such request sent")  # fmt: skip
        vehicle = self.requests.world.vehicles[sent[2]]
        return ResponseProblem(request_id=request_id, problem=problem, target=sent[3], vehicle_id=vehicle.id)

    def latency_summary(self) -> Latency:
        h = self.latency
        return Latency(count=h.count, p50=h.percentile(0.5), p90=h.percentile(0.9), p99=h.percentile(0.99),
                       p999=h.percentile(0.999), max=h.max)  # fmt: skip

    def report(self) -> Responses:
        return Responses(
            accounting=self.accounting(),
            latency_ms=self.latency_summary(),
            outcomes=dict(self.outcomes.most_common()),
            by_powertrain={k: dict(v) for k, v in sorted(self.by_powertrain.items())},
        )

    def timeline(self, seconds: list[Second]) -> list[Second]:
        """The decisions' timeline with each second's responses and end-to-end latency (longer, if they are)."""
        last = max(self._answered_per_second, default=-1)
        lag = seconds[-1].lag if seconds else 0
        padded = seconds + [
            Second(t=t, sent=0, decided=0, p50_ms=None, p99_ms=None, lag=lag) for t in range(len(seconds), last + 1)
        ]
        out = []
        for second in padded:
            window = self._latency_per_second.get(second.t)
            out.append(
                second.model_copy(
                    update={
                        "answered": self._answered_per_second[second.t],
                        "e2e_p50_ms": window.percentile(0.5) if window else None,
                        "e2e_p99_ms": window.percentile(0.99) if window else None,
                    }
                )
            )
        return out


def _code(response: dict[str, Any]) -> str:
    """SUCCESS, or the error's code (its type when it has none), as the vehicles service counts them."""
    if response.get("status") == "SUCCESS":
        return "SUCCESS"
    error = response.get("error")
    if isinstance(error, dict):
        return str(error.get("code") or error.get("type") or NO_CODE)
    return NO_CODE


def _problem(request_id: str, problem: str, response: dict[str, Any]) -> ResponseProblem:
    return ResponseProblem(request_id=request_id, problem=problem, target=str(response.get("target")),
                           vehicle_id=str(response.get("vehicle_id")))  # fmt: skip


def _violation(violation: Violation) -> ResponseProblem:
    read, command = violation.read, violation.command
    value = read.body.get("value") if isinstance(read.body, dict) else None
    expected = json.dumps(violation.expected)
    detail = f"read {json.dumps(value)} after {command.target} {command.request_id} set {expected}"
    return ResponseProblem(request_id=read.request_id, problem="effect", target=read.target,
                           vehicle_id=violation.vehicle_id, detail=detail)  # fmt: skip
