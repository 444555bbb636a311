"""The live decisions feed's arithmetic, pure: what a decision is to the feed, a subscriber's filter, and the window
of counts a subscriber receives once per tick (services/http/live_hub.py reads the streams and ticks).

A decision is decoded into `LiveDecision`, only the fields the feed shows (msgspec skips the rest of the JSON
without building it). A `Window` counts the decisions its filter admits, per outcome, and keeps the most recent
few; `flush()` turns that into one message and starts a new window. When the subscriber has not taken its
previous messages (a slow browser), the hub `skip()`s the tick: the window goes on counting, so no decision is
lost from the counts, and the next message says how many messages it stands for (`dropped`).
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import msgspec

from schemas.problems import Outcome

OUTCOMES: tuple[str, ...] = tuple(o.value for o in Outcome)
RECENT = 20
"""Decisions listed per message at most (the newest of its window)."""
MAX_FILTER_TEXT = 128


class LiveError(msgspec.Struct, frozen=True, gc=False):
    type: str | None = None
    code: str | None = None


class LiveDecision(msgspec.Struct, frozen=True, gc=False):
    """A decision as the feed reads it from the wire (schemas/messages.py DecisionMessage): the rest is skipped."""

    outcome: str
    app_id: str | None = None
    target: str | None = None
    vehicle_id: str | None = None
    error: LiveError | None = None
    decided_at: str | None = None

    def shown(self) -> dict[str, Any]:
        error = self.error
        return {
            "outcome": self.outcome,
            "target": self.target,
            "vehicle_id": self.vehicle_id,
            "error": None if error is None else "/".join(p for p in (error.type, error.code) if p),
            "decided_at": self.decided_at,
        }


decode_decision = msgspec.json.Decoder(LiveDecision).decode
"""A decision's JSON to `LiveDecision`; raises msgspec.DecodeError for what is not one."""


@dataclass(frozen=True, slots=True)
class LiveFilter:
    """Which of an app's decisions a subscriber counts: some outcomes (none named: all), a target and a vehicle id
    containing the given texts (case-insensitively; empty: any)."""

    outcomes: frozenset[str] = frozenset()
    target: str = ""
    vehicle: str = ""

    @classmethod
    def parse(cls, outcomes: list[str], target: str, vehicle: str) -> LiveFilter:
        """The filter of the feed's URL parameters; ValueError says what is wrong."""
        unknown = sorted(set(outcomes) - set(OUTCOMES))
        if unknown:
            raise ValueError(f"unknown outcome {unknown[0]!r}: choose among {', '.join(OUTCOMES)}")
        if max(len(target), len(vehicle)) > MAX_FILTER_TEXT:
            raise ValueError(f"a filter text is longer than {MAX_FILTER_TEXT} characters")
        return cls(frozenset(outcomes), target.strip().lower(), vehicle.strip().lower())

    def admits(self, decision: LiveDecision) -> bool:
        if self.outcomes and decision.outcome not in self.outcomes:
            return False
        if self.target and self.target not in (decision.target or "").lower():
            return False
        return not self.vehicle or self.vehicle in (decision.vehicle_id or "").lower()


@dataclass(slots=True)
class Window:
    """One subscriber's counts since its last message (see the module's text)."""

    filter: LiveFilter
    started: float
    """When this window began (a monotonic clock, seconds)."""
    counts: dict[str, int] = field(default_factory=dict)
    recent: deque[LiveDecision] = field(default_factory=lambda: deque(maxlen=RECENT))
    skipped: int = 0
    last_was_empty: bool = True

    def add(self, decision: LiveDecision) -> None:
        if self.filter.admits(decision):
            self.counts[decision.outcome] = self.counts.get(decision.outcome, 0) + 1
            self.recent.append(decision)

    def skip(self) -> None:
        """The subscriber is behind: no message this tick; the window keeps counting."""
        self.skipped += 1

    def flush(self, now: float) -> bytes | None:
        """This window as one server-sent event, and a new window from `now`. None while nothing happens (after
        one all-zero message, so that the page shows the rates falling to zero)."""
        if not self.counts and self.last_was_empty:
            self.started, self.skipped = now, 0
            return None
        seconds = max(now - self.started, 1e-3)
        counts = dict.fromkeys(OUTCOMES, 0) | self.counts
        message = {
            "window_s": round(seconds, 3),
            "counts": counts,
            "rate_per_s": {o: round(n / seconds, 1) for o, n in counts.items()},
            "recent": [d.shown() for d in reversed(self.recent)],  # newest first
            "dropped": self.skipped,
        }
        self.last_was_empty = not self.counts
        self.counts, self.started, self.skipped = {}, now, 0
        self.recent.clear()
        return b"data: " + json.dumps(message, separators=(",", ":")).encode() + b"\n\n"
