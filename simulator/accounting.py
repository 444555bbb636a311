"""Matching every request sent to the decisions read back: lost, duplicated, mismatched; latency; outcome mix.

The producers report what they sent (`Sent`), the decision reader reports what it read, in any order (a
decision often arrives before its producer's report does). Nothing here touches Redis.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from simulator.histogram import LatencyHistogram
from simulator.report import Accounting, Latency, Mismatch, Second, TargetCapability
from simulator.world import Intended, World

_BIT: dict[str, int] = {outcome.value: 1 << n for n, outcome in enumerate(Intended)}
MAX_EXAMPLES = 20


def outcome_mask(acceptable: frozenset[Intended]) -> int:
    mask = 0
    for outcome in acceptable:
        mask |= _BIT[outcome]
    return mask


def _names(mask: int) -> str:
    return " or ".join(o.value for o in Intended if mask & _BIT[o])


@dataclass(frozen=True, slots=True)
class Sent:
    """What a producer reports for each request it published (a duplicate publish is not reported again)."""

    request_id: str
    issued_at: float
    """Epoch seconds: the request's scheduled arrival, which its `issued_at` field carries."""
    vehicle: int
    target: str
    acceptable: int
    """outcome_mask() of the acceptable outcomes."""


class _Tracked:
    __slots__ = ("decisions", "sent")

    def __init__(self, sent: Sent) -> None:
        self.sent = sent
        self.decisions = 0


class Accountant:
    def __init__(self, world: World, started_at: float) -> None:
        self.world = world
        self.started_at = started_at
        self._requests: dict[str, _Tracked] = {}
        self._early: dict[str, list[tuple[str, float]]] = defaultdict(list)
        self.decided = 0
        self.duplicated = 0
        self.mismatched = 0
        self.examples: list[Mismatch] = []
        self.latency = LatencyHistogram()
        self.outcomes: Counter[str] = Counter()
        self.by_powertrain: dict[str, Counter[str]] = defaultdict(Counter)
        self.by_make: dict[str, Counter[str]] = defaultdict(Counter)
        self.by_target: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self._sent_per_second: Counter[int] = Counter()
        self._decided_per_second: Counter[int] = Counter()
        self._latency_per_second: dict[int, LatencyHistogram] = defaultdict(LatencyHistogram)

    @property
    def sent(self) -> int:
        return len(self._requests)

    def on_sent(self, records: list[Sent]) -> None:
        for record in records:
            tracked = _Tracked(record)
            self._requests[record.request_id] = tracked
            self._sent_per_second[self._second(record.issued_at)] += 1
            for outcome, read_at in self._early.pop(record.request_id, ()):
                self._count(tracked, outcome, read_at)

    def on_decision(self, request_id: str, outcome: str, read_at: float) -> None:
        tracked = self._requests.get(request_id)
        if tracked is None:
            self._early[request_id].append((outcome, read_at))
        else:
            self._count(tracked, outcome, read_at)

    def _count(self, tracked: _Tracked, outcome: str, read_at: float) -> None:
        tracked.decisions += 1
        sent = tracked.sent
        if tracked.decisions > 1:
            if tracked.decisions == 2:
                self.duplicated += 1
            return
        self.decided += 1
        latency_ms = 1000 * (read_at - sent.issued_at)
        second = self._second(read_at)
        self.latency.record(latency_ms)
        self._latency_per_second[second].record(latency_ms)
        self._decided_per_second[second] += 1
        vehicle = self.world.vehicles[sent.vehicle]
        self.outcomes[outcome] += 1
        self.by_powertrain[vehicle.powertrain.value][outcome] += 1
        self.by_make[vehicle.make][outcome] += 1
        counts = self.by_target[sent.target]
        counts[0] += 1
        counts[1] += outcome == Intended.VEHICLE_NOT_CAPABLE
        if not sent.acceptable & _BIT.get(outcome, 0):
            self._mismatch(sent.request_id, _names(sent.acceptable), outcome, sent.target, vehicle.id)

    def _mismatch(self, request_id: str, intended: str, outcome: str, target: str, vehicle_id: str) -> None:
        self.mismatched += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(Mismatch(request_id=request_id, intended=intended, outcome=outcome, target=target,
                                          vehicle_id=vehicle_id))  # fmt: skip

    def _second(self, at: float) -> int:
        return max(0, int(at - self.started_at))

    @property
    def pending(self) -> int:
        """Sent and not yet decided."""
        return self.sent - self.decided

    def accounting(self) -> Accounting:
        """The final count. Decisions for requests never reported as sent count as mismatched."""
        for request_id, decisions in self._early.items():
            for outcome, _ in decisions:
                self._mismatch(request_id, "(no such request sent)", outcome, "", "")
        self._early.clear()
        lost = sum(1 for tracked in self._requests.values() if tracked.decisions == 0)
        return Accounting(
            requests=self.sent,
            decided=self.decided,
            lost=lost,
            duplicated=self.duplicated,
            mismatched=self.mismatched,
            examples=self.examples,
        )

    def latency_summary(self) -> Latency:
        h = self.latency
        return Latency(count=h.count, p50=h.percentile(0.5), p90=h.percentile(0.9), p99=h.percentile(0.99),
                       p999=h.percentile(0.999), max=h.max)  # fmt: skip

    def timeline(self) -> list[Second]:
        last = max([*self._sent_per_second, *self._decided_per_second], default=-1)
        seconds, sent, decided = [], 0, 0
        for t in range(last + 1):
            sent += self._sent_per_second[t]
            decided += self._decided_per_second[t]
            window = self._latency_per_second.get(t)
            seconds.append(
                Second(
                    t=t,
                    sent=self._sent_per_second[t],
                    decided=self._decided_per_second[t],
                    p50_ms=window.percentile(0.5) if window else None,
                    p99_ms=window.percentile(0.99) if window else None,
                    lag=max(0, sent - decided),
                )
            )
        return seconds

    def capability_by_target(self) -> dict[str, TargetCapability]:
        return {t: TargetCapability(requests=n, not_capable=nc) for t, (n, nc) in sorted(self.by_target.items())}
