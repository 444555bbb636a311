"""What `fleetgate loadtest` shows: a live progress panel on stderr while it runs, a summary table at the end."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from simulator.loadtest import LoadTestOptions, Progress
from simulator.report import Latency, LoadReport, processes_text


class LiveProgress:
    """A rich Live panel; update() is the load test's progress callback. Plain lines when not on a terminal."""

    def __init__(self, console: Console, options: LoadTestOptions) -> None:
        self.console = console
        self.options = options
        self._live = Live(console=console, refresh_per_second=4, transient=False)
        self._last_phase = ""

    def __enter__(self) -> LiveProgress:
        if self.console.is_terminal:
            self._live.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.console.is_terminal:
            self._live.__exit__(kind, error, trace)

    def update(self, progress: Progress) -> None:
        if self.console.is_terminal:
            self._live.update(self._panel(progress))
        elif progress.phase != self._last_phase or progress.phase == "load":
            self.console.print(self._line(progress), highlight=False, soft_wrap=True)  # one line, even in a pipe
        self._last_phase = progress.phase

    def warn(self, warning: str) -> None:
        """A line above the live panel (or in the pipe), kept on screen."""
        self.console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)

    def _line(self, p: Progress) -> str:
        if p.phase not in ("load", "draining"):
            return p.phase
        return (
            f"{p.phase} {p.elapsed_s:5.1f}/{self.options.duration_s:.0f}s  sent {p.sent:,} ({p.sent_per_s:,.0f}/s)  "
            f"decided {p.decided:,} ({p.decided_per_s:,.0f}/s)  lag {p.lag:,}  answered {p.answered:,}"
        )

    def _panel(self, p: Progress) -> Group:
        table = Table.grid(padding=(0, 2))
        table.add_row(Text(self._line(p), style="bold"))
        if p.outcomes:
            table.add_row("  ".join(f"{name} {count:,}" for name, count in sorted(p.outcomes.items())))
        return Group(table)


def summary_table(report: LoadReport, title: str = "fleetgate loadtest") -> Table:
    run, throughput, latency, accounting = report.run, report.throughput, report.latency_ms, report.accounting
    answers = report.responses.accounting
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("run", f"{run.vehicles:,} vehicles ({run.connected:,} connected), {run.rate:,.0f}/s for "
                  f"{run.duration_s:.0f} s, {run.producers} producer(s), seed {run.seed}")  # fmt: skip
    table.add_row("gatekeepers", processes_text(run.gatekeepers, run.gatekeepers_found))
    table.add_row("vehicles", processes_text(run.vehicle_services, run.vehicle_services_found))
    table.add_row("set-up", f"{throughput.setup_s:.1f} s (fleet, app {run.app_id}'s config, owners' Connect flows)")
    held = "held" if throughput.rate_held else f"NOT held (producers up to {throughput.producer_behind_s:.1f} s behind)"
    table.add_row("sent", f"{throughput.sent:,} requests, {throughput.sent_per_s:,.0f}/s: rate {held}")
    table.add_row("decided", f"{throughput.decided:,}, {throughput.decided_per_s:,.0f}/s during the load")
    table.add_row("latency ms", _percentiles(latency))
    table.add_row("outcomes", "  ".join(f"{name} {count:,}" for name, count in report.outcomes.items()))
    table.add_row(
        "accounting",
        f"{_verdict(accounting.clean)}  requests {accounting.requests:,}  decided {accounting.decided:,}  "
        f"lost {accounting.lost}  duplicated {accounting.duplicated}  mismatched {accounting.mismatched}",
    )
    for example in accounting.examples[:5]:
        table.add_row("mismatch", f"{example.request_id}: {example.target} on {example.vehicle_id} intended "
                      f"{example.intended}, got {example.outcome}")  # fmt: skip
    table.add_row("e2e ms", _percentiles(report.responses.latency_ms))
    table.add_row("answers", "  ".join(f"{code} {count:,}" for code, count in report.responses.outcomes.items()))
    table.add_row(
        "responses",
        f"{_verdict(answers.clean)}  ALLOWED {answers.allowed:,}  answered {answers.answered:,}  lost {answers.lost}  "
        f"duplicated {answers.duplicated}  mismatched {answers.mismatched}  effects checked "
        f"{answers.effects_checked:,}  violated {answers.effects_violated}",
    )
    for problem in answers.examples[:5]:
        detail = f": {problem.detail}" if problem.detail else ""
        table.add_row(problem.problem, f"{problem.request_id}: {problem.target} on {problem.vehicle_id}{detail}")
    return table


def left_behind(options: LoadTestOptions, report: LoadReport) -> str:
    """One line: what a run without --cleanup left in Redis, and how to remove it."""
    if report.run.cleaned_up:
        return f"cleaned up: app {report.run.app_id}, its vehicles, their state and connections (streams kept)"
    last = options.vehicles - 1
    return (
        f"left in Redis: app {options.app_id} with its config and {report.run.connected:,} connections, vehicles "
        f"{options.id_prefix}000000..{options.id_prefix}{last:06d} and their state; remove them with "
        "`fleetgate loadtest --remove-only` (or run with --cleanup)"
    )


def _percentiles(latency: Latency) -> str:
    return (
        f"p50 {latency.p50:.1f}  p90 {latency.p90:.1f}  p99 {latency.p99:.1f}  p99.9 {latency.p999:.1f}  "
        f"max {latency.max:.1f}"
    )


def _verdict(clean: bool) -> str:
    return "[green]OK[/green]" if clean else "[red]FAILED[/red]"
