"""The load test's `report.html`: headline figures, five inline charts, escaping, verdict and empty reports."""

from __future__ import annotations

import json
import re

import pytest

from simulator.report import (
    Accounting,
    Latency,
    LoadReport,
    Mismatch,
    RunSettings,
    Second,
    TargetCapability,
    Throughput,
)
from simulator.report_html import OTHER_COLOUR, OUTCOME_COLOURS, render_html
from simulator.svg import nice_ticks

EVIL = "<script>alert(1)</script>"


def make_report(*, lost: int = 0, gatekeepers: int = 4) -> LoadReport:
    """A small but realistic run: 10 s at 2,000/s, one latency gap, a hostile make name, one mismatch."""
    timeline = [
        Second(
            t=t,
            sent=2000 + 7 * t,
            decided=1990 + 5 * t,
            p50_ms=None if t == 4 else 1.2 + t / 10,
            p99_ms=None if t == 4 else 8.5 + t,
            lag=12,
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
        sample_decisions=[json.dumps(decision), "not json <b>"],
    )


def empty_report() -> LoadReport:
    """A run that measured nothing at all."""
    return LoadReport(
        run=RunSettings(
            vehicles=0, rate=0.0, duration_s=0.0, producers=0, seed=0, gatekeepers=0, started_at="2026-11-28T12:00:00Z"
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
    )


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
    assert "<td>4</td>" in page
    assert "<td>external</td>" in render_html(make_report(gatekeepers=0))


def test_five_charts_with_outcome_colours_for_present_outcomes() -> None:
    """Five inline SVG charts; a stacked segment per present outcome, grey for unknown ones, none for absent ones."""
    page = render_html(make_report())
    assert page.count("<svg") == 5
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
    """The accounting line says OK for a clean run and FAILED when requests were lost, with the mismatch table."""
    clean = render_html(make_report())
    assert '<span class="ok">OK</span>' in clean
    assert "FAILED" not in clean
    assert "Mismatches" not in clean
    broken = render_html(make_report(lost=2))
    assert "lost 2" in broken
    assert '<span class="failed">FAILED</span>' in broken
    assert '<span class="ok">' not in broken
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
    assert page.count("no data") == 6  # five charts and the outcome table
    assert "<td>external</td>" in page


def test_single_point_and_all_zero_inputs() -> None:
    """One second of timeline with zero counts and a target with zero rate still draw, without dividing by zero."""
    report = empty_report().model_copy(
        update={
            "timeline": [Second(t=0, sent=0, decided=0, p50_ms=0.0, p99_ms=None, lag=0)],
            "not_capable_by_target": {"fuel-level": TargetCapability(requests=5, not_capable=0)},
        }
    )
    page = render_html(report)
    assert page.count("<svg") == 3
    assert "<circle" in page
    assert "0.0 % (0/5)" in page


def test_nice_ticks_are_round_and_cover_the_range() -> None:
    """Ticks step by round amounts, include both ends, and a zero-width range still gets an axis."""
    assert nice_ticks(0, 2031.5) == [0, 500, 1000, 1500, 2000, 2500]
    assert nice_ticks(0, 9) == [0, 2, 4, 6, 8, 10]
    assert nice_ticks(3, 3) == pytest.approx([3.0, 3.2, 3.4, 3.6, 3.8, 4.0])
