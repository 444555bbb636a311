"""`fleetgate contract`: write (or check) the contract files: JSON Schema per message, and the AsyncAPI document."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fleetgate._output import fail
from schemas.contract import json_schema_files
from services.asyncapi import asyncapi_document
from services.http.openapi import openapi_document
from services.settings import Settings

app = typer.Typer(help="The wire contract other programs rely on.", no_args_is_help=True)

DEFAULT_DIR = Path("docs/contract")
ASYNCAPI_FILE = "asyncapi.json"
OPENAPI_FILE = "openapi.json"


def _default_settings() -> Settings:
    """The settings' defaults rather than the environment's, so that the checked-in files do not depend on who
    generates them (`FLEETGATE_KEY_PREFIX`, `FLEETGATE_REDIS_URL` would otherwise leak in)."""
    defaults = {name: field.get_default(call_default_factory=True) for name, field in Settings.model_fields.items()}
    return Settings(**defaults)


def asyncapi_json() -> str:
    """The gatekeeper's AsyncAPI 3 document (services/asyncapi.py), for the default settings."""
    return json.dumps(asyncapi_document(_default_settings()), indent=2, sort_keys=True) + "\n"


def openapi_json() -> str:
    """The HTTP API's OpenAPI document (services/http/openapi.py), for the default settings."""
    return json.dumps(openapi_document(_default_settings()), indent=2, sort_keys=True) + "\n"


def contract_files() -> dict[str, str]:
    """File name -> text of every generated file under docs/contract/."""
    return json_schema_files() | {ASYNCAPI_FILE: asyncapi_json(), OPENAPI_FILE: openapi_json()}


def stale_files(directory: Path, files: dict[str, str]) -> list[Path]:
    """The files under `directory` that are missing or differ from `files`."""
    stale = []
    for name, text in files.items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(path)
    return stale


@app.command("export")
def export_command(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the contract files to.")] = DEFAULT_DIR,
    check: Annotated[bool, typer.Option("--check", help="Only check the files are current; exit 1 if not.")] = False,
) -> None:
    """Write a JSON Schema per message type (request, decision, connection-event, deadletter), asyncapi.json and
    the HTTP API's openapi.json."""
    files = contract_files()
    stale = stale_files(out, files)
    if check and stale:
        typer.echo(f"out of date: {' '.join(str(p) for p in stale)} (run `fleetgate contract export`)", err=True)
        raise typer.Exit(1)
    if not check:
        for path in stale:
            try:
                out.mkdir(parents=True, exist_ok=True)
                path.write_text(files[path.name], encoding="utf-8")
            except OSError as exc:
                fail(f"cannot write {path}: {exc.strerror}")
    done = f"checked {len(files)}" if check else f"wrote {len(stale)} of {len(files)}"
    typer.echo(f"{done} contract files in {out}", err=True)
