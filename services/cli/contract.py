"""`fleetgate contract`: write (or check) the JSON Schema files of the message contract."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from schemas.contract import json_schema_files
from services.cli._output import fail

app = typer.Typer(help="The wire contract other programs rely on.", no_args_is_help=True)

DEFAULT_DIR = Path("docs/contract")


@app.command("export")
def export_command(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the schema files to.")] = DEFAULT_DIR,
    check: Annotated[bool, typer.Option("--check", help="Only check the files are current; exit 1 if not.")] = False,
) -> None:
    """Write one JSON Schema file per message type (request, decision, connection-event, deadletter)."""
    stale = []
    for name, text in json_schema_files().items():
        path = out / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not check:
            try:
                out.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            except OSError as exc:
                fail(f"cannot write {path}: {exc.strerror}")
    if check and stale:
        typer.echo(f"out of date: {' '.join(str(p) for p in stale)} (run `fleetgate contract export`)", err=True)
        raise typer.Exit(1)
    typer.echo(f"{'checked' if check else 'wrote'} {len(json_schema_files())} schema files in {out}", err=True)
