"""The consumers' commands: `fleetgate tail`, `fleetgate audit run|query` (the consumers: services/consumers/) and
`fleetgate usage run` (services/insights/usage.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from fleetgate._output import console, fail, print_json, reporting_errors, table
from fleetgate._registry import RedisUrlOption, run, settings_for
from services.consumers.audit import DEFAULT_GROUP, Auditor, summary
from services.consumers.audit_store import AuditStore, DenialGrouping
from services.consumers.tail import (
    OUTCOME_STYLES,
    JsonPrinter,
    LinePrinter,
    TailOptions,
    TailResult,
    parse_outcomes,
    tail,
)
from services.insights.usage import UsageConsumer
from services.keyspace import Keys
from services.logs import configure_logging_unless_configured
from services.registry import Registry
from services.settings import Settings
from services.streams import stop_on_signals

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
UntilIdleOption = Annotated[
    bool, typer.Option("--until-idle", help="Exit once a read (of each shard) finds nothing new (batch use).")
]
ConsumerOption = Annotated[
    str | None, typer.Option("--consumer", help="This consumer's name (default: host-pid).", show_default=False)
]
DbOption = Annotated[
    Path, typer.Option("--db", envvar="FLEETGATE_AUDIT_DB", help="The audit's SQLite file.", dir_okay=False)
]


def tail_command(
    *,
    outcome: Annotated[
        list[str] | None, typer.Option("--outcome", help="Only this outcome, e.g. PERMISSION_DENIED (repeatable).")
    ] = None,
    vehicle: Annotated[str | None, typer.Option("--vehicle", help="Only this vehicle id.")] = None,
    from_start: Annotated[
        bool, typer.Option("--from-start", help="Begin at the first decision kept, not at the stream's end.")
    ] = False,
    group: Annotated[
        str | None,
        typer.Option("--group", help="Read as a consumer of this group (created if need be) and acknowledge."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print each decision's JSON on one line.")] = False,
    count: Annotated[
        int | None, typer.Option("--count", min=1, help="Exit after this many matching decisions.")
    ] = None,
    redis_url: RedisUrlOption = None,
) -> None:
    """Show decisions as they are made, one line each, until Ctrl-C (without --group it takes nothing from anyone).

    Exits 1 when the group missed decisions: trimmed before it read them."""
    try:
        outcomes = parse_outcomes(outcome or ())
    except ValueError as exc:
        fail(str(exc))
    options = TailOptions(outcomes, vehicle, from_start, group, count)
    printer = JsonPrinter() if as_json else LinePrinter()

    async def follow(registry: Registry) -> TailResult:
        stopping = asyncio.Event()
        with stop_on_signals(stopping):
            return await tail(registry.redis, registry.keys, options, printer, stopping)

    # A Ctrl-C before the signal handlers are in place is a clean exit all the same.
    with reporting_errors(), contextlib.suppress(KeyboardInterrupt):
        result = run(redis_url, follow)
        if result.missed:
            printer.warning(f"group {group} missed {result.missed} decisions (trimmed before it read them)")
            raise typer.Exit(1)


audit_app = typer.Typer(help="The audit log: every decision and connection event, in SQLite.", no_args_is_help=True)
query_app = typer.Typer(help="Ask the audit log.", no_args_is_help=True)
audit_app.add_typer(query_app, name="query")


@audit_app.command("run")
def audit_run_command(
    *,
    db: DbOption,
    until_idle: UntilIdleOption = False,
    group: Annotated[
        str, typer.Option("--group", help="The consumer group on the decisions and connection-events streams.")
    ] = DEFAULT_GROUP,
    consumer: ConsumerOption = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=10_000, help="Entries per read.")] = 500,
    redis_url: RedisUrlOption = None,
) -> None:
    """Store every decision and connection event in SQLite until SIGTERM or Ctrl-C (the batch in hand is finished).

    With --until-idle it exits 1 when the audit has a gap: entries trimmed before it read them ("missed")."""
    with reporting_errors():
        configure_logging_unless_configured(as_json=Settings().log_json)  # as the other services log
        store = AuditStore.open(db)

        async def audit(registry: Registry) -> dict[str, Any]:
            auditor = Auditor(
                registry.redis, registry.keys, store, group=group, consumer=consumer, batch_size=batch_size
            )
            typer.echo(
                f"auditing {_audited_streams(registry.keys)} into {db} (group {group}, consumer {auditor.consumer})",
                err=True,
            )
            with stop_on_signals(auditor.stopping):
                return summary(await auditor.run(until_idle=until_idle))

        try:
            result = run(redis_url, audit)
        except KeyboardInterrupt:  # before the signal handlers were in place: nothing was read yet
            return
        finally:
            store.close()
        print_json(result)
    if until_idle and result["missed"]:
        typer.echo(
            f"error: the audit has a gap: {result['missed']} entries were trimmed before it stored them", err=True
        )
        raise typer.Exit(1)


def _audited_streams(keys: Keys) -> str:
    """The streams an audit reads, for its start message: named when unsharded, counted when sharded."""
    if not keys.sharded:
        return f"{keys.decisions} and {keys.connection_events}"
    return f"the decisions and connection-events streams of {keys.shards} shards ({keys.shard(0).decisions}, ...)"


usage_app = typer.Typer(
    help="The usage aggregate: each app's decisions counted per hour (what `fleetgate access advise` reads).",
    no_args_is_help=True,
)


@usage_app.command("run")
def usage_run_command(
    *,
    until_idle: UntilIdleOption = False,
    consumer: ConsumerOption = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=2000, help="Entries per read.")] = 500,
    redis_url: RedisUrlOption = None,
) -> None:
    """Count every app's decisions in hourly buckets until SIGTERM or Ctrl-C (`fleetgate serve` runs one too).

    With --until-idle it prints what it counted and exits 1 when decisions were trimmed before it counted them."""
    with reporting_errors():
        settings = settings_for(redis_url)
        configure_logging_unless_configured(as_json=settings.log_json)

        async def count(registry: Registry) -> dict[str, int]:
            usage = UsageConsumer(settings, registry.redis, consumer=consumer, batch_size=batch_size)
            typer.echo(f"counting decisions (group {usage.group}, consumer {usage.consumer})", err=True)
            with stop_on_signals(usage.stopping):
                return (await usage.run(until_idle=until_idle)).to_json()

        try:
            result = run(redis_url, count)
        except KeyboardInterrupt:  # before the signal handlers were in place: nothing was counted yet
            return
        print_json(result)
    if until_idle and result["missed"]:
        typer.echo(f"error: {result['missed']} decisions were trimmed before they were counted", err=True)
        raise typer.Exit(1)


@query_app.callback()
def query_callback(ctx: typer.Context, db: DbOption) -> None:
    """Queries read the file only; they may run while `audit run` writes it."""
    ctx.obj = db


@contextmanager
def _reading(ctx: typer.Context) -> Iterator[AuditStore]:
    """The database named by `--db`, read-only; errors reported the CLI's way."""
    with reporting_errors():
        store = AuditStore.open_readonly(ctx.obj)
        try:
            yield store
        finally:
            store.close()


@query_app.command("vehicle")
def vehicle_command(
    ctx: typer.Context,
    vehicle_id: Annotated[str, typer.Argument(help="The vehicle id.")],
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """A vehicle's decisions, newest first."""
    with _reading(ctx) as store:
        decisions = store.vehicle_decisions(vehicle_id, limit)
    if as_json:
        print_json(decisions)
        return
    rows = table(f"vehicle {vehicle_id}", "decided at", "outcome", "request", "target", "permission", "error")
    for d in decisions:
        error = d.get("error") or {}
        # Text, not markup: an id holding `[...]` must print as it is.
        rows.add_row(
            Text(d["decided_at"]),
            Text(d["outcome"], style=OUTCOME_STYLES.get(d["outcome"], "")),
            Text(d["request_id"]),
            Text(f"{d.get('kind') or '?'}:{d.get('target') or '-'}"),
            Text(d.get("permission") or "-"),
            Text(f"{error['type']}/{error.get('code') or 'null'}" if error else ""),
        )
    console().print(rows)


@query_app.command("denials")
def denials_command(
    ctx: typer.Context,
    by: Annotated[DenialGrouping, typer.Option("--by", help="Group by permission or by outcome.")] = "permission",
    as_json: JsonOption = False,
) -> None:
    """How many decisions were not ALLOWED, grouped by the permission needed (or by outcome)."""
    with _reading(ctx) as store:
        counts = store.denials(by)
    if as_json:
        print_json([{by: key, "count": n} for key, n in counts])
        return
    rows = table(f"denials by {by}", by, "denials")
    for key, n in counts:
        rows.add_row(Text(key or "(unknown target)"), str(n))
    console().print(rows)


@query_app.command("consent")
def consent_command(
    ctx: typer.Context,
    connection_id: Annotated[str, typer.Argument(help="The connection id.")],
    as_json: JsonOption = False,
) -> None:
    """A connection's consent history in order: created, re-authorized, revoked, with the scopes held after each."""
    with _reading(ctx) as store:
        events = store.consent(connection_id)
    if as_json:
        print_json(events)
        return
    rows = table(f"connection {connection_id}", "occurred at", "event", "permissions", "source")
    for e in events:
        permissions = " ".join(f"{p['name']}{'*' if p['required'] else ''}" for p in e["permissions"])
        source = f"scope {e['scope']!r}" if e.get("scope") else f"config v{e.get('config_version')}"
        rows.add_row(Text(e["occurred_at"]), Text(e["type"]), Text(permissions), Text(source))
    console().print(rows)
