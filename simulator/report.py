"""What a load test measured: the shape of `report.json`, written by `fleetgate loadtest --report DIR`.

Every figure of the run is here; `report.html` is drawn from this alone (see `simulator/report_html.py`).
Decisions and the vehicles' responses are accounted apart: `accounting` for the one, `responses` for the other.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RunSettings(_Part):
    vehicles: int
    """The fleet's size."""
    connected: int = 0
    """Vehicles whose owners connected at the start (those the run's app's Connection Filters admit): the load's
    requests are theirs."""
    app_id: str = ""
    """The run's own application (its config, filters and connections)."""
    rate: float
    """Target arrivals per second (open loop, Poisson)."""
    duration_s: float
    producers: int
    seed: int
    gatekeepers: int
    """Worker processes the load test started; 0 when it used an external gatekeeper."""
    vehicle_services: int
    """Vehicles service processes the load test started; 0 when it used an external one."""
    gatekeepers_found: int = 0
    """Gatekeeper workers already running on the prefix when the run started (by their heartbeats): they shared
    the load with those it started, or did it all when it started none."""
    vehicle_services_found: int = 0
    """Vehicles services already running on the prefix when the run started: they shared the answers likewise."""
    cleaned_up: bool = False
    """Whether the run deleted what it created afterwards (`--cleanup`)."""
    started_at: str
    """RFC 3339 UTC."""


class Throughput(_Part):
    setup_s: float
    """Fleet registration and owners' Connect flows, before the first request."""
    sent: int
    sent_per_s: float
    duplicates_sent: int
    """Extra publishes of request ids already sent (each must still get exactly one decision)."""
    decided: int
    decided_per_s: float
    """Decisions read while the load ran, per second of load."""
    producer_behind_s: float
    """Longest time the producers were behind their schedule; above 1 s the offered rate was not held."""
    rate_held: bool
    """Whether the producers kept the target rate (an open-loop test that silently slows is lying)."""


class Latency(_Part):
    """`issued_at` to the message read by the accounting consumer, in milliseconds: the decision, or (end to end)
    the vehicle's response."""

    count: int
    p50: float
    p90: float
    p99: float
    p999: float
    max: float


class Second(_Part):
    """One second of the run, counted from the first request."""

    t: int
    sent: int
    decided: int
    p50_ms: float | None
    p99_ms: float | None
    lag: int
    """Requests sent but not yet decided at the end of this second."""
    answered: int = 0
    """Responses read (first ones only)."""
    e2e_p50_ms: float | None = None
    e2e_p99_ms: float | None = None


class Mismatch(_Part):
    request_id: str
    intended: str
    outcome: str
    target: str
    vehicle_id: str


class Accounting(_Part):
    requests: int
    """Distinct request ids sent (a duplicate publish is one request)."""
    decided: int
    """Requests with at least one decision."""
    lost: int
    """Requests with no decision by the end of the grace period."""
    duplicated: int
    """Requests with more than one decision."""
    mismatched: int
    """Requests whose outcome differs from the one the simulator intended."""
    examples: list[Mismatch] = Field(default_factory=list)
    """Up to 20 mismatches, to start an investigation from."""

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.mismatched == 0


class TargetCapability(_Part):
    requests: int
    not_capable: int


class ResponseProblem(_Part):
    """A response that does not add up, to start an investigation from."""

    request_id: str
    problem: str
    """lost, duplicated, mismatched (no ALLOWED decision) or effect (a read contradicting the command before it)."""
    target: str
    vehicle_id: str
    detail: str = ""


class ResponseAccounting(_Part):
    allowed: int
    """Requests with an ALLOWED decision: each must get exactly one response."""
    answered: int
    """ALLOWED requests with at least one response."""
    lost: int
    """ALLOWED requests with no response by the end of the grace period."""
    duplicated: int
    """Requests with more than one response."""
    mismatched: int
    """Responses to requests without an ALLOWED decision."""
    effects_checked: int
    """Reads judged against the successful command before them (simulator/effects.py)."""
    effects_violated: int
    """Of those, the reads that did not say what the command set."""
    examples: list[ResponseProblem] = Field(default_factory=list)
    """Up to 5 of each problem."""

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.mismatched == 0 and self.effects_violated == 0


class Responses(_Part):
    """What the vehicles answered to the ALLOWED requests."""

    accounting: ResponseAccounting
    latency_ms: Latency
    """End to end: `issued_at` to the response read by the accounting consumer."""
    outcomes: dict[str, int]
    """First responses by code: SUCCESS, or the error's code (ASLEEP, DOOR_OPEN, ...)."""
    by_powertrain: dict[str, dict[str, int]]
    """Powertrain -> code -> responses."""


class LoadReport(_Part):
    run: RunSettings
    throughput: Throughput
    latency_ms: Latency
    outcomes: dict[str, int]
    """Decisions by outcome."""
    by_powertrain: dict[str, dict[str, int]]
    """Powertrain -> outcome -> decisions."""
    by_make: dict[str, dict[str, int]]
    """Make -> outcome -> decisions."""
    not_capable_by_target: dict[str, TargetCapability]
    """Signal code or command name -> requests and VEHICLE_NOT_CAPABLE decisions."""
    timeline: list[Second]
    accounting: Accounting
    responses: Responses
    sample_decisions: list[str] = Field(default_factory=list)
    """A few decisions as published (JSON text), one per outcome where possible."""

    @property
    def clean(self) -> bool:
        """Every request decided once as intended, and every ALLOWED one answered once without contradiction."""
        return self.accounting.clean and self.responses.accounting.clean


def processes_text(started: int, found: int) -> str:
    """Who did the work: `1 started`, `1 started + 2 found running`, or `2 found running (external)`."""
    if not started:
        return f"{found:,} found running (external)"
    return f"{started:,} started" + (f" + {found:,} found running" if found else "")
