"""Matching every request sent to the decisions read back: lost, duplicated, mismatched; latency; outcome mix.

The producers report what they sent (`Sent`), the decision reader reports what it read, in any order (a
decision often arrives before its producer's report does). Nothing here touches Redis.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from simulator.histogram import LatencyHistogram
from simulator.report import Accounting, Latency, Mismatch, Second, TargetCapability
from simulator.workload import FOREIGN_CONNECTION, MALFORMED
from simulator.world import Intended, World

MAX_EXAMPLES = 20

Sent = tuple[str, float, int, str, int]
"""What a producer reports for each request it published, as a plain tuple (cheap to pass between processes):
request id; issued at (epoch seconds: its scheduled arrival, which its `issued_at` field carries); the vehicle's
index in World.vehicles; the target; workload flags (MALFORMED, FOREIGN_CONNECTION). A duplicate publish of an
id is not reported again."""


class _Tracked:
    __slots__ = ("decisions", "sent")

    def __init__(self, sent: Sent) -> None:
        self.sent = sent
        self.decisions = 0


class Accountant:
    """Matches every decision to the request that was sent, and checks its outcome against what was intended."""

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
        self._applied: dict[str, tuple[float, float]] = {}

    def change_started(self, connection_id: str, at: float) -> None:
        """An owner's change to the connection is being made (epoch seconds): judge later decisions by it."""
        self._applied[connection_id] = (at - self.started_at, float("inf"))

    def change_finished(self, connection_id: str, at: float) -> None:
        started, _ = self._applied[connection_id]
        self._applied[connection_id] = (started, at - self.started_at)

    @property
    def sent(self) -> int:
        return len(self._requests)

    def sent_record(self, request_id: str) -> Sent | None:
        """What the producer reported for this request id, if it has (yet)."""
        tracked = self._requests.get(request_id)
        return None if tracked is None else tracked.sent

    def issued_at(self, request_id: str) -> float | None:
        tracked = self._requests.get(request_id)
        return None if tracked is None else tracked.sent[1]

    def unreadable_ids(self) -> list[str]:
        """The ids the gatekeeper gave the requests sent unreadable (`unreadable:<entry id>`, see ShardKeys)."""
        return [request_id for request_id in self._requests if request_id.startswith("unreadable:")]

    def on_sent(self, records: list[Sent]) -> None:
        for record in records:
            tracked = _Tracked(record)
            self._requests[record[0]] = tracked
            self._sent_per_second[self._second(record[1])] += 1
            for outcome, read_at in self._early.pop(record[0], ()):
                self._count(tracked, outcome, read_at)

    def on_decision(self, request_id: str, outcome: str, read_at: float) -> None:
        tracked = self._requests.get(request_id)
        if tracked is None:
            self._early[request_id].append((outcome, read_at))
        else:
            self._count(tracked, outcome, read_at)

    def _count(self, tracked: _Tracked, outcome: str, read_at: float) -> None:
        tracked.decisions += 1
        if tracked.decisions > 1:
            if tracked.decisions == 2:
                self.duplicated += 1
            return
        self.decided += 1
        request_id, issued_at, index, target, flags = tracked.sent
        latency_ms = 1000 * (read_at - issued_at)
        second = self._second(read_at)
        self.latency.record(latency_ms)
        self._latency_per_second[second].record(latency_ms)
        self._decided_per_second[second] += 1
        vehicle = self.world.vehicles[index]
        self.outcomes[outcome] += 1
        self.by_powertrain[vehicle.powertrain.value][outcome] += 1
        self.by_make[vehicle.make][outcome] += 1
        counts = self.by_target[target]
        counts[0] += 1
        counts[1] += outcome == Intended.VEHICLE_NOT_CAPABLE
        if flags & MALFORMED:
            acceptable = frozenset({Intended.REJECTED})
        else:
            acceptable = self.world.intended(
                vehicle,
                target,
                own_connection=not flags & FOREIGN_CONNECTION,
                issued_s=issued_at - self.started_at,
                decided_s=read_at - self.started_at,
                applied=self._applied.get(vehicle.connection_id or ""),
            )
        if outcome not in acceptable:
            intended = " or ".join(sorted(acceptable))
            self._mismatch(request_id, intended, outcome, target, vehicle.id)

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
