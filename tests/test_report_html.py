"""The load test's `report.html`: headline figures, seven inline charts, the vehicles' responses, escaping, verdicts
and empty reports."""

from __future__ import annotations

import json
import re

import pytest

from simulator.report import (
    Accounting,
    Latency,
    LoadReport,
    Mismatch,
    ResponseAccounting,
    ResponseProblem,
    Responses,
    RunSettings,
    Second,
    TargetCapability,
    Throughput,
)
from simulator.report_html import OTHER_COLOUR, OUTCOME_COLOURS, RESPONSE_COLOURS, render_html
from simulator.svg import nice_ticks

EVIL = "<script>alert(1)</script>"


def make_responses(*, violated: int = 0) -> Responses:
    """The vehicles' answers to the 15,000 ALLOWED requests; with `violated`, reads that contradicted a lock."""
    examples = [
        ResponseProblem(request_id="r-7", problem="effect", target="closure-islocked", vehicle_id=EVIL,
                        detail="read true after unlock r-6 set false")
    ] if violated else []  # fmt: skip
    return Responses(
        accounting=ResponseAccounting(
            allowed=15_000,
            answered=15_000,
            lost=0,
            duplicated=0,
            mismatched=0,
            effects_checked=321,
            effects_violated=violated,
            examples=examples,
        ),
        latency_ms=Latency(count=15_000, p50=3.25, p90=6.5, p99=19.75, p999=40.0, max=95.5),
        outcomes={"SUCCESS": 14_000, "ASLEEP": 700, "DOOR_OPEN": 290, "NEW_CODE": 10},
        by_powertrain={"BEV": {"SUCCESS": 5800, "DOOR_OPEN": 200}, "ICE": {"SUCCESS": 8200, "ASLEEP": 700,
                       "DOOR_OPEN": 90, "NEW_CODE": 10}},
    )  # fmt: skip


def make_report(*, lost: int = 0, gatekeepers: int = 4, violated: int = 0) -> LoadReport:
    """A small but realistic run: 10 s at 2,000/s, one latency gap, a hostile make name, one mismatch."""
    timeline = [
        Second(
            t=t,
            sent=2000 + 7 * t,
            decided=1990 + 5 * t,
            p50_ms=None if t == 4 else 1.2 + t / 10,
            p99_ms=None if t == 4 else 8.5 + t,
            lag=12,
            answered=1490 + 3 * t,
            e2e_p50_ms=None if t == 4 else 3.1 + t / 10,
            e2e_p99_ms=None if t == 4 else 19.0 + t,
        )
        for t in range(10)
    ]
    decision = {"requestId": "r-1", "outcome": "PERMISSION_DENIED", "docURL": "https://smartcar.com/docs/errors"}
    return LoadReport(
        run=RunSettings(
            vehicles=5000,
            rate=2000.0,
            duration_s=10.0,
            producers=3,
            seed=42,
            gatekeepers=gatekeepers,
            vehicle_services=1,
            started_at="2026-11-28T12:00:00Z",
        ),
        throughput=Throughput(
            setup_s=3.4,
            sent=20_315,
            sent_per_s=2031.5,
            duplicates_sent=17,
            decided=20_125,
            decided_per_s=2012.5,
            producer_behind_s=0.04,
            rate_held=True,
        ),
        latency_ms=Latency(count=20_125, p50=1.61, p90=4.02, p99=12.34, p999=27.5, max=88.8),
        outcomes={"ALLOWED": 15000, "PERMISSION_DENIED": 3000, "VEHICLE_NOT_CAPABLE": 2000, "REJECTED": 125},
        by_powertrain={
            "BEV": {"ALLOWED": 6000, "PERMISSION_DENIED": 1000},
            "ICE": {"ALLOWED": 9000, "PERMISSION_DENIED": 2000, "VEHICLE_NOT_CAPABLE": 2000, "REJECTED": 125},
        },
        by_make={"Tesla": {"ALLOWED": 6000, "SOMETHING_NEW": 3}, EVIL: {"VEHICLE_NOT_CAPABLE": 2000}},
        not_capable_by_target={
            "tractionbattery-stateofcharge": TargetCapability(requests=1000, not_capable=400),
            "fuel-level": TargetCapability(requests=800, not_capable=80),
            "never-requested": TargetCapability(requests=0, not_capable=0),
        },
        timeline=timeline,
        accounting=Accounting(
            requests=20_315,
            decided=20_315 - lost,
            lost=lost,
            duplicated=0,
            mismatched=1,
            examples=[
                Mismatch(request_id="r-9", intended="ALLOWED", outcome="REJECTED", target=EVIL, vehicle_id="v-1")
            ],
        )
        if lost
        else Accounting(requests=20_315, decided=20_315, lost=0, duplicated=0, mismatched=0),
        responses=make_responses(violated=violated),
        sample_decisions=[json.dumps(decision), "not json <b>"],
    )


def empty_report() -> LoadReport:
    """A run that measured nothing at all."""
    return LoadReport(
        run=RunSettings(
            vehicles=0,
            rate=0.0,
            duration_s=0.0,
            producers=0,
            seed=0,
            gatekeepers=0,
            vehicle_services=0,
            started_at="2026-11-28T12:00:00Z",
        ),
        throughput=Throughput(
            setup_s=0.0,
            sent=0,
            sent_per_s=0.0,
            duplicates_sent=0,
            decided=0,
            decided_per_s=0.0,
            producer_behind_s=0.0,
            rate_held=False,
        ),
        latency_ms=Latency(count=0, p50=0.0, p90=0.0, p99=0.0, p999=0.0, max=0.0),
        outcomes={},
        by_powertrain={},
        by_make={},
        not_capable_by_target={"x": TargetCapability(requests=0, not_capable=0)},
        timeline=[],
        accounting=Accounting(requests=0, decided=0, lost=0, duplicated=0, mismatched=0),
        responses=Responses(
            accounting=ResponseAccounting(allowed=0, answered=0, lost=0, duplicated=0, mismatched=0, effects_checked=0,
                                          effects_violated=0),
            latency_ms=Latency(count=0, p50=0.0, p90=0.0, p99=0.0, p999=0.0, max=0.0),
            outcomes={},
            by_powertrain={},
        ),
    )  # fmt: skip


def test_headline_figures_appear() -> None:
    """Rate, duration, vehicles, producers, processes, setup, per-second rates and latency percentiles are shown."""
    page = render_html(make_report())
    for text in (
        "2,000 requests/s",
        "10 s",
        "5,000",
        "3.4 s",
        "2,031.5/s",
        "17 duplicate publishes",
        "2,012.5/s",
        "yes",
        "0.04 s",
    ):
        assert text in page
    for text in ("p50 1.61", "p90 4.02", "p99 12.34", "p99.9 27.50", "max 88.80"):
        assert text in page
    assert "<td>4 started</td>" in page
    assert "<td>0 found running (external)</td>" in render_html(make_report(gatekeepers=0))


def test_seven_charts_with_outcome_colours_for_present_outcomes() -> None:
    """Seven inline SVG charts; a stacked segment per present outcome, grey for unknown ones, none for absent ones."""
    page = render_html(make_report())
    assert page.count("<svg") == 7
    assert "no data" not in page
    for outcome in ("ALLOWED", "PERMISSION_DENIED", "VEHICLE_NOT_CAPABLE", "REJECTED"):
        assert f'fill="{OUTCOME_COLOURS[outcome]}"><title>' in page
    assert f'fill="{OTHER_COLOUR}"><title>Tesla: SOMETHING_NEW 3 of 6,003' in page
    assert f'fill="{OUTCOME_COLOURS["UNAUTHORIZED"]}"><title>' not in page
    assert "<title>ICE: ALLOWED 9,000 of 13,125 (68.6 %)</title>" in page


def test_not_capable_bars_sorted_and_skip_unrequested_targets() -> None:
    """Targets by falling rate with their percentage; a target never requested gets no bar."""
    page = render_html(make_report())
    assert page.index("40.0 % (400/1,000)") < page.index("10.0 % (80/800)")
    assert "never-requested" not in page


def test_report_text_is_escaped() -> None:
    """A make named like a script tag appears only escaped, and the page carries no script at all."""
    page = render_html(make_report(lost=2))
    assert EVIL not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page.lower()
    assert "not json &lt;b&gt;" in page


def test_accounting_verdict() -> None:
    """The accounting line says OK for a clean run and FAILED when requests were lost, with the mismatch table (the
    responses' own verdict stays OK)."""
    clean = render_html(make_report())
    assert '<span class="ok">OK</span>' in clean
    assert "FAILED" not in clean
    assert "Mismatches" not in clean
    broken = render_html(make_report(lost=2))
    assert "lost 2" in broken
    assert broken.count('<span class="failed">FAILED</span>') == broken.count('<span class="ok">') == 1
    assert "<h2>Mismatches (1 of 1)</h2>" in broken


def test_sample_decisions_pretty_printed() -> None:
    """A JSON sample is indented inside a <pre>; its URL is escaped text, not a link."""
    page = render_html(make_report())
    assert "<pre>{\n  &quot;requestId&quot;: &quot;r-1&quot;," in page
    assert "https://smartcar.com/docs/errors" in page


def test_page_is_self_contained() -> None:
    """No scripts, no src/href attributes, and no URL outside the escaped sample decisions."""
    page = render_html(make_report(lost=2))
    assert not re.search(r"<script|\ssrc=|\shref=|@import|url\(", page, re.IGNORECASE)
    samples_start = page.index("<h2>Sample decisions</h2>")
    assert "http://" not in page
    assert "https://" not in page[:samples_start]


def test_empty_report_renders_no_data() -> None:
    """Empty timeline, dicts and zero counts: no exception, no chart, 'no data' in each chart's place."""
    page = render_html(empty_report())
    assert "<svg" not in page
    assert page.count("no data") == 9  # seven charts, the outcome and the response tables
    assert page.count("found running (external)</td>") == 2  # the gatekeeper and the vehicles service


def test_single_point_and_all_zero_inputs() -> None:
    """One second of timeline with zero counts and a target with zero rate still draw, without dividing by zero."""
    report = empty_report().model_copy(
        update={
            "timeline": [Second(t=0, sent=0, decided=0, p50_ms=0.0, p99_ms=None, lag=0)],
            "not_capable_by_target": {"fuel-level": TargetCapability(requests=5, not_capable=0)},
        }
    )
    page = render_html(report)
    assert page.count("<svg") == 3  # throughput, decision latency, the not-capable bars: no response in that second
    assert "<circle" in page
    assert "0.0 % (0/5)" in page


def test_nice_ticks_are_round_and_cover_the_range() -> None:
    """Ticks step by round amounts, include both ends, and a zero-width range still gets an axis."""
    assert nice_ticks(0, 2031.5) == [0, 500, 1000, 1500, 2000, 2500]
    assert nice_ticks(0, 9) == [0, 2, 4, 6, 8, 10]
    assert nice_ticks(3, 3) == pytest.approx([3.0, 3.2, 3.4, 3.6, 3.8, 4.0])


def test_what_the_vehicles_answered() -> None:
    """The responses' accounting, effects and end-to-end latency in the headline; a table and a stacked bar per
    powertrain of the response codes, in their fixed colours (grey for a code without one); answered/s, and the
    end-to-end latency over time, with the gap of the second that measured none."""
    page = render_html(make_report())
    assert 'ALLOWED 15,000, answered 15,000, lost 0, duplicated 0, mismatched 0: <span class="ok">OK</span>' in page
    assert "checked 321, violated 0" in page
    assert "p50 3.25, p90 6.50, p99 19.75, p99.9 40.00, max 95.50 (15,000 responses)" in page
    section = page[page.index("<h2>What the vehicles answered</h2>") :]
    assert f'<span style="color:{RESPONSE_COLOURS["DOOR_OPEN"]}">&#9632;</span> DOOR_OPEN</td>' in section
    assert '<td class="num">14,000</td><td class="num">93.3 %</td>' in section
    assert "<title>BEV: DOOR_OPEN 200 of 6,000 (3.3 %)</title>" in section
    assert f'fill="{OTHER_COLOUR}"><title>ICE: NEW_CODE 10 of 9,000' in section
    assert 'aria-label="responses by powertrain"' in section
    assert ">answered/s</text>" in page
    e2e = page[page.index('aria-label="end-to-end latency"') :]
    assert e2e[: e2e.index("</svg>")].count("<polyline") == 4  # p50 and p99, each broken at second 4
    assert "Response problems" not in page


def test_a_violated_effect_fails_the_responses_verdict_and_is_shown_escaped() -> None:
    """A read contradicting its command makes the responses FAILED (the decisions stay OK) and lists it, escaped."""
    page = render_html(make_report(violated=1))
    assert "checked 321, violated 1" in page
    assert page.count('<span class="failed">FAILED</span>') == 1
    problems = page[page.index("<h2>Response problems (examples)</h2>") :]
    assert "<td>read true after unlock r-6 set false</td>" in problems
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in problems
    assert EVIL not in page
