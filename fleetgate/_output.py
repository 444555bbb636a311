"""How every CLI command reports: JSON on stdout where asked, one clear error line on stderr and exit 2."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from schemas.errors import FleetgateError, describe_validation_error

USAGE_ERROR = 2


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(USAGE_ERROR)


@contextmanager
def reporting_errors() -> Iterator[None]:
    """Turn the domain's errors into `error: ...` on stderr and exit code 2, never a traceback."""
    try:
        yield
    except ValidationError as exc:
        fail(describe_validation_error(exc))
    except FleetgateError as exc:  # services' and the simulator's errors too: one root
        fail(str(exc))


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


def console() -> Console:
    """A terminal's width on a terminal; in a pipe, room for whole rows (rich would assume 80 columns)."""
    found = Console()
    return found if found.is_terminal else Console(width=1000)


def table(title: str, *columns: str) -> Table:
    """A table whose cells fold rather than being cut to `…`: ids and names are the point."""
    made = Table(title=title)
    for column in columns:
        made.add_column(column, overflow="fold")
    return made
