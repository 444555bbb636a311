"""`fleetgate demo`: the whole system in one command, on a Redis it starts itself unless given one.

A small mixed fleet, the simulated app's Vehicle Access config, owners connecting (some unchecking), one
gatekeeper worker and the vehicles service, ten seconds of load with owners revoking and re-authorizing meanwhile;
then what apps saw: the decisions, and what the vehicles answered to the ALLOWED ones.

On a Redis of its own the demo leaves nothing (the server goes). On a given one (--redis-url) it runs like
`fleetgate loadtest --cleanup`: as its own app, with its own vehicles, and deletes what it created afterwards,
except the streams' entries (other consumers may be reading them).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fleetgate._output import reporting_errors
from fleetgate._registry import RedisUrlOption
from fleetgate.loadtest_view import LiveProgress, left_behind, summary_table
from fleetgate.serve import DEFAULT_REDIRECT_URI, serve_http
from services.demo_redis import DemoRedis, demo_redis
from services.redis_client import redact
from services.settings import Settings
from simulator.loadtest import LoadTestOptions, run_load_test
from simulator.report import LoadReport

DEMO_PREFIX = "fleetgate-demo"


def demo_command(
    duration: Annotated[float, typer.Option(help="Seconds of load.", min=1)] = 10,
    rate: Annotated[float | None, typer.Option(help="Requests per second [default: 1000, embedded: 200].")] = None,
    vehicles: Annotated[int, typer.Option(help="Fleet size.", min=1)] = 500,
    embedded: Annotated[
        bool, typer.Option("--embedded", help="Use the embedded Redis-protocol server even if redis-server exists.")
    ] = False,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="Then keep the demo's Redis and serve Connect, tokens and the API on it, with a gatekeeper and the "
            "vehicles service and a test-mode app whose credentials are printed, until Ctrl-C.",
        ),
    ] = False,
    port: Annotated[int, typer.Option(help="The port of --serve.", min=0, max=65535)] = 8000,
    redis_url: RedisUrlOption = None,
) -> None:
    """Run fleetgate end to end for about ten seconds and show what apps would see.

    With --redis-url it runs on that server as its own app (fleetgate-loadtest) with its own vehicles (lt-...),
    changing no other app's config, filters or connections, and deletes what it created afterwards, like
    `fleetgate loadtest --cleanup`: not the streams' entries (other consumers may be reading them).
    """
    console = Console()
    with reporting_errors(), _redis(redis_url, embedded=embedded) as redis:
        console.print(f"[bold]fleetgate demo[/bold] on {redis.description}")
        options = LoadTestOptions(
            redis_url=redis.url,
            prefix=os.environ.get("FLEETGATE_KEY_PREFIX", DEMO_PREFIX),
            vehicles=vehicles,
            rate=rate or (200 if redis.embedded else 1000),
            duration_s=duration,
            seed=7,
            grace_s=15,
            cleanup=redis_url is not None,  # someone else's server: leave it as we found it (but for streams)
        )
        try:
            with LiveProgress(Console(stderr=True), options) as live:
                report = asyncio.run(run_load_test(options, live.update, live.warn))
        except KeyboardInterrupt:
            console.print("interrupted: the gatekeeper, the vehicles and the producers were stopped")
            raise typer.Exit(130) from None
        _show(console, report)
        if report.run.cleaned_up:
            console.print(left_behind(options, report))
        if serve:  # on the demo's Redis, still running
            settings = Settings(redis_url=redis.url, key_prefix=options.prefix, http_port=port)
            serve_http(settings, with_workers=True, local_app=[DEFAULT_REDIRECT_URI])
    if not report.clean:
        raise typer.Exit(1)


@contextmanager
def _redis(redis_url: str | None, *, embedded: bool) -> Iterator[DemoRedis]:
    if redis_url is not None:
        yield DemoRedis(redis_url, f"the Redis at {redact(redis_url)}", embedded=False)
        return
    with demo_redis(embedded=embedded) as started:
        yield started


def _show(console: Console, report: LoadReport) -> None:
    powertrains = list(report.by_powertrain)
    table = Table(title="Outcomes by powertrain", title_justify="left")
    table.add_column("outcome")
    for powertrain in powertrains:
        table.add_column(powertrain, justify="right")
    for outcome in report.outcomes:
        table.add_row(outcome, *(f"{report.by_powertrain[p].get(outcome, 0):,}" for p in powertrains))
    console.print(table)
    decisions = [json.loads(sample) for sample in report.sample_decisions]
    denied = [d for d in decisions if d.get("error")]
    samples = Table(title="What apps are told (one decision of each kind)", title_justify="left")
    for column in ("outcome", "target", "HTTP", "error type", "description"):
        samples.add_column(column)
    for decision in denied:
        error = decision["error"]
        samples.add_row(decision["outcome"], decision["target"] or "-", str(error["statusCode"]), error["type"],
                        error["description"])  # fmt: skip
    console.print(samples)
    if denied:
        console.print("One of them in full, as published on the decisions stream:")
        console.print_json(json.dumps(denied[0]))
    console.print(_answers(report))
    console.print(summary_table(report, title="fleetgate demo"))


def _answers(report: LoadReport) -> Table:
    """The vehicles' responses to the ALLOWED requests, by code and powertrain."""
    by_powertrain = report.responses.by_powertrain
    table = Table(title="What the vehicles answered", title_justify="left")
    table.add_column("response")
    for powertrain in by_powertrain:
        table.add_column(powertrain, justify="right")
    for code in report.responses.outcomes:
        table.add_row(code, *(f"{by_powertrain[p].get(code, 0):,}" for p in by_powertrain))
    return table
