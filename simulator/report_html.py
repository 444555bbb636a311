"""`report.html`: a load test's `LoadReport` as one self-contained page, viewable offline from a file.

No JavaScript, no external CSS, fonts or images: the charts are inline SVG drawn by `simulator/svg.py`.
Every text taken from the report is HTML-escaped, since makes, targets and sample decisions are data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from html import escape

from simulator.report import Latency, LoadReport, ResponseProblem, Second, processes_text
from simulator.svg import Bar, Segment, Series, bars, fmt, line_chart, stacked_bars

# Fixed per outcome so the same colour means the same outcome in every chart and every report.
OUTCOME_COLOURS: dict[str, str] = {
    "ALLOWED": "#2e7d32",
    "PERMISSION_DENIED": "#f9a825",
    "VEHICLE_NOT_CAPABLE": "#1565c0",
    "UNAUTHORIZED": "#c62828",
    "REJECTED": "#6a1b9a",
}
# The same for what vehicles answer: SUCCESS, then Smartcar's VEHICLE_STATE and UPSTREAM codes most often seen.
RESPONSE_COLOURS: dict[str, str] = {
    "SUCCESS": "#2e7d32",
    "ASLEEP": "#5c6bc0",
    "UNREACHABLE": "#8d6e63",
    "DOOR_OPEN": "#f9a825",
    "IN_MOTION": "#ef6c00",
    "CHARGING_PLUG_NOT_CONNECTED": "#00838f",
    "NOT_CHARGING": "#26a69a",
    "CHARGING_IN_PROGRESS": "#7cb342",
    "FULLY_CHARGED": "#1565c0",
    "LOW_BATTERY": "#c62828",
    "REMOTE_ACCESS_DISABLED": "#6a1b9a",
    "NO_RESPONSE": "#ad1457",
}
OTHER_COLOUR = "#9e9e9e"
SENT_COLOUR = "#1565c0"
DECIDED_COLOUR = "#ef6c00"
ANSWERED_COLOUR = "#2e7d32"
P50_COLOUR = "#2e7d32"
P99_COLOUR = "#c62828"
NOT_CAPABLE_TOP = 25

_CSS = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 60em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #2e7d32; font-weight: bold; }
.failed { color: #c62828; font-weight: bold; }
.no-data { color: #888; font-style: italic; }
pre { background: #f7f7f7; border: 1px solid #ddd; padding: 0.6em; overflow-x: auto; }
"""


def render_html(report: LoadReport) -> str:
    """The whole page for `report`."""
    title = f"fleetgate load test, {report.run.started_at}"
    sections = [
        f"<h1>{escape(title)}</h1>",
        _headline(report),
        _totals(report.outcomes, OUTCOME_COLOURS, "Outcome", "Decisions"),
        "<h2>Throughput</h2>",
        _throughput_chart(report.timeline),
        "<h2>Latency: request to decision</h2>",
        _latency_chart([(s.t, s.p50_ms, s.p99_ms) for s in report.timeline], "latency"),
        "<h2>Latency end to end: request to response</h2>",
        _latency_chart([(s.t, s.e2e_p50_ms, s.e2e_p99_ms) for s in report.timeline], "end-to-end latency"),
        "<h2>Outcomes by powertrain</h2>",
        _outcome_mix(report.by_powertrain, "outcomes by powertrain"),
        "<h2>Outcomes by make</h2>",
        _outcome_mix(report.by_make, "outcomes by make"),
        f"<h2>VEHICLE_NOT_CAPABLE rate by target (top {NOT_CAPABLE_TOP})</h2>",
        _not_capable_chart(report),
        "<h2>What the vehicles answered</h2>",
        _totals(report.responses.outcomes, RESPONSE_COLOURS, "Response", "Responses"),
        _outcome_mix(report.responses.by_powertrain, "responses by powertrain", RESPONSE_COLOURS),
        _mismatches(report),
        _response_problems(report),
        _samples(report.sample_decisions),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(sections)
        + "\n</body>\n</html>\n"
    )


def outcome_colour(outcome: str, colours: Mapping[str, str] = OUTCOME_COLOURS) -> str:
    return colours.get(outcome, OTHER_COLOUR)


def _ordered_outcomes(names: Iterable[str], colours: Mapping[str, str] = OUTCOME_COLOURS) -> list[str]:
    """The known outcomes (or codes) in their fixed order, then any others by name, so bars stack alike."""
    known = list(colours)
    return sorted(set(names), key=lambda name: (known.index(name) if name in known else len(known), name))


def _table(rows: Iterable[tuple[str, str]]) -> str:
    """A two-column table; the values are markup the caller has already escaped."""
    body = "".join(f"<tr><th>{escape(label)}</th><td>{value}</td></tr>" for label, value in rows)
    return f"<table>{body}</table>"


def _verdict(clean: bool) -> str:
    return '<span class="ok">OK</span>' if clean else '<span class="failed">FAILED</span>'


def _counts(pairs: Iterable[tuple[str, int]]) -> str:
    return ", ".join(f"{name} {value:,}" for name, value in pairs)


def _percentiles(latency: Latency, measured: str) -> str:
    """Its percentiles in ms and how many `measured` it measured."""
    values = (("p50", latency.p50), ("p90", latency.p90), ("p99", latency.p99), ("p99.9", latency.p999),
              ("max", latency.max))  # fmt: skip
    return ", ".join(f"{name} {value:.2f}" for name, value in values) + f" ({latency.count:,} {measured})"


def _headline(report: LoadReport) -> str:
    run, through, latency, acc = report.run, report.throughput, report.latency_ms, report.accounting
    answers = report.responses.accounting
    held = "yes" if through.rate_held else '<span class="failed">NO</span>'
    counts = _counts((("requests", acc.requests), ("decided", acc.decided), ("lost", acc.lost),
                      ("duplicated", acc.duplicated), ("mismatched", acc.mismatched)))  # fmt: skip
    answered = _counts((("ALLOWED", answers.allowed), ("answered", answers.answered), ("lost", answers.lost),
                        ("duplicated", answers.duplicated), ("mismatched", answers.mismatched)))  # fmt: skip
    effects = _counts((("checked", answers.effects_checked), ("violated", answers.effects_violated)))
    return _table(
        [
            ("Target rate", f"{fmt(run.rate)} requests/s"),
            ("Duration", f"{fmt(run.duration_s)} s"),
            ("Vehicles", f"{run.vehicles:,} ({run.connected:,} connected, app {run.app_id})"),
            ("Producers", f"{run.producers:,}"),
            ("Gatekeeper processes", processes_text(run.gatekeepers, run.gatekeepers_found)),
            ("Vehicles service processes", processes_text(run.vehicle_services, run.vehicle_services_found)),
            ("Seed", f"{run.seed}"),
            ("Setup time", f"{through.setup_s:.1f} s"),
            (
                "Sent",
                f"{through.sent:,} ({through.sent_per_s:,.1f}/s), {through.duplicates_sent:,} duplicate publishes",
            ),
            ("Decided", f"{through.decided:,} ({through.decided_per_s:,.1f}/s)"),
            ("Rate held", f"{held} (producers behind at most {through.producer_behind_s:.2f} s)"),
            ("Latency (ms)", _percentiles(latency, "decisions")),
            ("End-to-end latency (ms)", _percentiles(report.responses.latency_ms, "responses")),
            ("Accounting", f"{counts}: {_verdict(acc.clean)}"),
            ("Responses", f"{answered}: {_verdict(answers.clean)}"),
            ("Command effects", effects),
        ]
    )


def _totals(counts: Mapping[str, int], colours: Mapping[str, str], what: str, unit: str) -> str:
    """A table of counts by outcome (or response code) with their colour keys and shares."""
    total = sum(counts.values())
    if not total:
        return f'<p class="no-data">{escape(unit.lower())}: no data</p>'
    rows = "".join(
        f'<tr><td><span style="color:{outcome_colour(name, colours)}">&#9632;</span> {escape(name)}</td>'
        f'<td class="num">{counts[name]:,}</td><td class="num">{100 * counts[name] / total:.1f} %</td></tr>'
        for name in _ordered_outcomes(counts, colours)
    )
    return f"<table><tr><th>{what}</th><th>{unit}</th><th>Share</th></tr>{rows}</table>"


def _throughput_chart(timeline: list[Second]) -> str:
    return line_chart(
        [
            Series("sent/s", SENT_COLOUR, [(s.t, float(s.sent)) for s in timeline]),
            Series("decided/s", DECIDED_COLOUR, [(s.t, float(s.decided)) for s in timeline]),
            Series("answered/s", ANSWERED_COLOUR, [(s.t, float(s.answered)) for s in timeline]),
        ],
        caption="throughput",
        x_label="seconds since the first request",
        y_label="requests per second",
    )


def _latency_chart(seconds: list[tuple[int, float | None, float | None]], caption: str) -> str:
    """p50 and p99 of each second: (t, p50, p99) in ms."""
    return line_chart(
        [
            Series("p50", P50_COLOUR, [(t, p50) for t, p50, _ in seconds]),
            Series("p99", P99_COLOUR, [(t, p99) for t, _, p99 in seconds]),
        ],
        caption=caption,
        x_label="seconds since the first request",
        y_label="latency (ms)",
    )


def _outcome_mix(
    groups: Mapping[str, Mapping[str, int]], caption: str, colours: Mapping[str, str] = OUTCOME_COLOURS
) -> str:
    rows = [
        (
            group,
            [Segment(name, counts[name], outcome_colour(name, colours)) for name in _ordered_outcomes(counts, colours)],
        )
        for group, counts in sorted(groups.items())
    ]
    return stacked_bars(rows, caption=caption)


def _not_capable_chart(report: LoadReport) -> str:
    rates = [
        (target, cap.not_capable / cap.requests, cap)
        for target, cap in report.not_capable_by_target.items()
        if cap.requests > 0
    ]
    rates.sort(key=lambda item: (-item[1], item[0]))
    items = [
        Bar(target, rate, f"{100 * rate:.1f} % ({cap.not_capable:,}/{cap.requests:,})")
        for target, rate, cap in rates[:NOT_CAPABLE_TOP]
    ]
    return bars(items, caption="VEHICLE_NOT_CAPABLE rate", colour=outcome_colour("VEHICLE_NOT_CAPABLE"))


def _mismatches(report: LoadReport) -> str:
    examples = report.accounting.examples
    if not examples:
        return ""
    header = "".join(f"<th>{name}</th>" for name in ("request id", "intended", "outcome", "target", "vehicle"))
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{escape(value)}</td>" for value in (m.request_id, m.intended, m.outcome, m.target, m.vehicle_id)
        )
        + "</tr>"
        for m in examples
    )
    shown = f"{len(examples)} of {report.accounting.mismatched:,}"
    return f"<h2>Mismatches ({shown})</h2><table><tr>{header}</tr>{rows}</table>"


def _response_problems(report: LoadReport) -> str:
    accounting = report.responses.accounting
    if not accounting.examples:
        return ""
    header = "".join(f"<th>{name}</th>" for name in ("request id", "problem", "target", "vehicle", "detail"))
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(value)}</td>" for value in _problem_cells(p)) + "</tr>"
        for p in accounting.examples
    )
    return f"<h2>Response problems (examples)</h2><table><tr>{header}</tr>{rows}</table>"


def _problem_cells(problem: ResponseProblem) -> tuple[str, ...]:
    return problem.request_id, problem.problem, problem.target, problem.vehicle_id, problem.detail


def _pretty(text: str) -> str:
    """Indented JSON when `text` parses, else the text unchanged (a sample is evidence, not to be dropped)."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def _samples(samples: list[str]) -> str:
    if not samples:
        return ""
    blocks = "\n".join(f"<pre>{escape(_pretty(sample))}</pre>" for sample in samples)
    return f"<h2>Sample decisions</h2>\n{blocks}"
