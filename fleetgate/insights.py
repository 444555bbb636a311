"""`fleetgate access advise` and `fleetgate access whatif`: least-privilege advice from an app's decisions, and a
config's what-if against the registered fleet (services/insights/). Tables by default, `--json` for machines."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from fleetgate._output import console, print_json, reporting_errors, table
from fleetgate._registry import AppOption, RedisUrlOption, run, settings_for
from schemas.application import DEFAULT_APP_ID
from schemas.grant import ConnectionFilters, FilterPowertrain
from services.insights.advice import Advice, advise
from services.insights.whatif import WhatIf, what_if
from services.insights.window import format_window, parse_window
from services.registry import Registry
from services.registry.config_file import load_config_file

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
NOT_CAPABLE_ROWS = 25
"""The most frequent not-capable (target, make, powertrain) a table shows; --json has them all."""
VERDICT_STYLES = {"unused": "yellow", "unchecked": "magenta", "stale_grants": "cyan", "unrequested": "red"}


def advise_command(
    app_id: AppOption = DEFAULT_APP_ID,
    since: Annotated[str, typer.Option("--since", help="How far back: 30m, 12h, 7d, 2w (read in whole hours).")] = "7d",
    as_json: JsonOption = False,
    redis_url: RedisUrlOption = None,
) -> None:
    """Per permission the app requests: its use over the window, what is granted but unused, what owners unchecked,
    and which targets vehicles could not serve (by make and powertrain)."""
    with reporting_errors():
        window = parse_window(since)
        settings = settings_for(redis_url)

        async def read(registry: Registry) -> Advice:
            return await advise(registry, settings, app_id, window)

        advice = run(redis_url, read)
    if as_json:
        print_json(advice.to_json())
    else:
        show_advice(advice)


def show_advice(advice: Advice) -> None:
    out = console()
    window = advice.window
    out.print(
        Text(
            f"app {advice.app_id}, config v{advice.config_version}, {advice.connections} active connections; "
            f"decisions of the last {format_window(window.since)} ({len(window.hours)} hours from "
            f"{window.start:%Y-%m-%d %H:%M} UTC): "
            + (", ".join(f"{n} {outcome}" for outcome, n in sorted(advice.outcomes.items())) or "none")
        )
    )
    if not advice.counting:
        out.print(Text("no usage consumer has run yet: `fleetgate serve` or `fleetgate usage run` counts decisions"))
    elif advice.behind:
        out.print(Text(f"the usage aggregate has {advice.behind} decisions still to count"))
    rows = table("permissions", "permission", "requested", "allowed", "denied", "held by", "lacked by", "verdict")
    for p in advice.permissions:
        requested = ("required" if p.required else "optional") if p.requested else "no"
        verdict = Text(p.verdict or "", style=VERDICT_STYLES.get(p.verdict or "", ""))
        rows.add_row(p.permission, requested, str(p.allowed), str(p.denied), str(p.held_by), str(p.lacked_by), verdict)
    out.print(rows)
    if advice.not_capable:
        rows = table("VEHICLE_NOT_CAPABLE", "target", "make", "powertrain", "answers")
        for n in advice.not_capable[:NOT_CAPABLE_ROWS]:
            rows.add_row(Text(n.target), Text(n.make), Text(n.powertrain), str(n.count))
        out.print(rows)
        if (more := len(advice.not_capable) - NOT_CAPABLE_ROWS) > 0:
            out.print(Text(f"and {more} more (target, make, powertrain) with fewer answers: --json lists them all"))


def whatif_command(
    file: Annotated[Path, typer.Argument(help="A config file, as `fleetgate access publish` takes.")],
    app_id: AppOption = DEFAULT_APP_ID,
    allow: Annotated[
        list[FilterPowertrain] | None,
        typer.Option(
            "--allow", help="Try these Connection Filters instead of the app's (repeat).", case_sensitive=False
        ),
    ] = None,
    allow_unknown: Annotated[
        bool | None,
        typer.Option("--allow-unknown/--deny-unknown", help="With --allow: whether UNKNOWN powertrains may connect."),
    ] = None,
    as_json: JsonOption = False,
    redis_url: RedisUrlOption = None,
) -> None:
    """What publishing the config would mean: the vehicles that could connect, each selection's share of capable
    vehicles, and the active connections that lack what it asks (PERMISSION_DENIED until they re-authenticate)."""
    filters = None
    if allow is not None or allow_unknown is not None:
        filters = ConnectionFilters(powertrains=frozenset(allow or ()), allow_unknown=bool(allow_unknown))
    with reporting_errors():
        config = load_config_file(file)

        async def compute(registry: Registry) -> WhatIf:
            return await what_if(registry, config, app_id=app_id, filters=filters)

        result = run(redis_url, compute)
    if as_json:
        print_json(result.to_json())
    else:
        show_what_if(result)


def show_what_if(result: WhatIf) -> None:
    out = console()
    filters = result.filters
    admitted = ", ".join(sorted(filters.powertrains)) or "any powertrain"
    out.print(
        Text(
            f"app {result.app_id}: {result.connectable} of {result.vehicles} registered vehicles could connect "
            f"(filters: {admitted}{', UNKNOWN too' if filters.allow_unknown else ', not UNKNOWN'})"
        )
    )
    for title, shares in (("by powertrain", result.by_powertrain), ("by make", result.by_make)):
        rows = table(title, "", "vehicles", "could connect")
        for share in shares:
            rows.add_row(Text(share.name), str(share.vehicles), str(share.connectable))
        out.print(rows)
    rows = table("selections", "target", "permission", "required", "capable", "share", "VEHICLE_NOT_CAPABLE")
    for t in result.targets:
        tenths = None if t.share is None else round(t.share * 1000)  # both columns from one rounding: they add to 100
        capable = "-" if tenths is None else f"{tenths / 10:.1f}%"
        expected = "-" if tenths is None else f"{(1000 - tenths) / 10:.1f}%"
        rows.add_row(t.target, t.permission, "yes" if t.required else "", str(t.capable), capable, expected)
    out.print(rows)
    lacking = result.connections
    out.print(
        Text(
            f"{lacking.active} active connections: {lacking.lacking_required} lack a required permission, "
            f"{lacking.lacking_optional_only} only optional ones (PERMISSION_DENIED for those until re-authenticated)"
        )
    )
    rows = table("connections lacking", "permission", "connections")
    for permission, count in lacking.lacking.items():
        rows.add_row(permission, str(count))
    out.print(rows)
