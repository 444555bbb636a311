"""`fleetgate catalog`: browse the permissions, signals and commands, as tables or JSON."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fleetgate._output import fail, print_json, reporting_errors
from schemas.catalog import Signal, close_matches, get_catalog
from schemas.powertrain import Powertrain

app = typer.Typer(help="The signal and command catalog, and the permissions they need.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _powertrains(values: frozenset[Powertrain]) -> str:
    return " ".join(p.value for p in Powertrain if p in values)


def _signal_json(signal: Signal) -> dict[str, Any]:
    return {"code": signal.code, "group": signal.group, **signal.model_dump(mode="json", exclude={"code"})}


@app.command("signals")
def signals_command(
    group: Annotated[str | None, typer.Option("--group", "-g", help="Only this group, e.g. charge.")] = None,
    permission: Annotated[str | None, typer.Option("--permission", "-p", help="Only signals needing it.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List signal codes with the permission each needs and the powertrains that can have it."""
    catalog = get_catalog()
    signals = list(catalog.signals)
    if group is not None:
        groups = sorted({s.group for s in signals})
        if group.lower() not in groups:
            hint = close_matches(group.lower(), groups)
            fail(f"unknown group {group!r}{f'; did you mean {hint[0]!r}?' if hint else ''} Groups: {' '.join(groups)}")
        signals = [s for s in signals if s.group == group.lower()]
    if permission is not None:
        with reporting_errors():
            catalog.permission(permission)
        signals = [s for s in signals if s.permission == permission]
    if as_json:
        print_json([_signal_json(s) for s in signals])
        return
    table = Table(title=f"{len(signals)} signals")
    for column in ("code", "name", "value", "permission", "powertrains", "mapping"):
        table.add_column(column, no_wrap=column in {"code", "permission"})
    for s in signals:
        value = f"{s.shape.value} ({s.unit})" if s.unit else s.shape.value
        table.add_row(s.code, s.name, value, s.permission, _powertrains(s.powertrains), s.mapping.value)
    Console().print(table)


@app.command("commands")
def commands_command(as_json: JsonOption = False) -> None:
    """List commands with the permission each needs, its parameters and the powertrains that can do it."""
    commands = get_catalog().commands
    if as_json:
        print_json([c.model_dump(mode="json") for c in commands])
        return
    table = Table(title=f"{len(commands)} commands")
    for column in ("command", "permission", "parameters", "powertrains", "mapping"):
        table.add_column(column, no_wrap=column in {"command", "permission"})
    for c in commands:
        params = ", ".join(_param_summary(p.model_dump()) for p in c.params)
        table.add_row(c.name, c.permission, params or "-", _powertrains(c.powertrains), c.mapping.value)
    Console().print(table)


def _param_summary(param: dict[str, Any]) -> str:
    if param["choices"]:
        return f"{param['name']}: {'|'.join(param['choices'])}"
    if param["minimum"] is not None or param["maximum"] is not None:
        return f"{param['name']}: {param['minimum']:g}..{param['maximum']:g}"
    return f"{param['name']}: {param['type']}"


@app.command("permissions")
def permissions_command(as_json: JsonOption = False) -> None:
    """List the OAuth permissions with how many signals and commands need each."""
    catalog = get_catalog()
    usage = {p.name: 0 for p in catalog.permissions}
    for target in (*catalog.signals, *catalog.commands):
        usage[target.permission] += 1
    if as_json:
        print_json([{**p.model_dump(mode="json"), "targets": usage[p.name]} for p in catalog.permissions])
        return
    table = Table("permission", "kind", "targets", "description", title=f"{len(usage)} permissions")
    for p in catalog.permissions:
        table.add_row(p.name, p.kind.value, str(usage[p.name]), p.description)
    Console().print(table)
