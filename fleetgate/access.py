"""`fleetgate access`: derive the least permissions for a selection, and parse scope strings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fleetgate._output import fail, print_json, reporting_errors
from fleetgate._registry import AppOption, RedisUrlOption, existing_app, run
from schemas.access import VehicleAccessConfig, derive
from schemas.application import DEFAULT_APP_ID
from schemas.scope import parse_scope, render_scope
from services.registry import Registry
from services.registry.config_file import config_json, load_config_file

app = typer.Typer(
    help="Vehicle Access: from signals and commands to the least OAuth permissions; advice from usage; what-if.",
    no_args_is_help=True,
)


@app.command("derive")
def derive_command(
    signal: Annotated[list[str] | None, typer.Option("--signal", "-s", help="A signal code to select.")] = None,
    command: Annotated[list[str] | None, typer.Option("--command", "-c", help="A command name to select.")] = None,
    required: Annotated[
        list[str] | None,
        typer.Option("--required", "-r", help="A selected signal code or command name to mark required."),
    ] = None,
) -> None:
    """Print the minimal permission set for the selection, and its scope string."""
    if not signal and not command:
        fail("select at least one --signal or --command")
    with reporting_errors():
        config = VehicleAccessConfig.select(signals=signal or (), commands=command or (), required=required or ())
        permissions = derive(config)
    print_json({"permissions": permissions.items(), "scope": render_scope(permissions)})


@app.command("parse-scope")
def parse_scope_command(
    scope: Annotated[str, typer.Argument(help='e.g. "required:read_odometer read_battery"')],
) -> None:
    """Parse a Connect scope parameter into its permissions."""
    with reporting_errors():
        permissions = parse_scope(scope)
    print_json({"permissions": permissions.items()})


@app.command("publish")
def publish_command(
    file: Annotated[Path, typer.Argument(help="A TOML or JSON file with [[signals]] and [[commands]].")],
    app_id: AppOption = DEFAULT_APP_ID,
    redis_url: RedisUrlOption = None,
) -> None:
    """Publish a Vehicle Access config as the app's new current version (existing connections keep their scopes)."""
    with reporting_errors():
        config = load_config_file(file)

        async def publish(registry: Registry) -> VehicleAccessConfig:
            return await registry.publish_config(config, await existing_app(registry, app_id))

        published = run(redis_url, publish)
    print_json(config_json(published))


@app.command("show")
def show_command(
    version: Annotated[int | None, typer.Option(help="A published version [default: the current one].", min=1)] = None,
    app_id: AppOption = DEFAULT_APP_ID,
    redis_url: RedisUrlOption = None,
) -> None:
    """Print one of the app's published configs with the permissions it derives."""

    async def read(registry: Registry) -> VehicleAccessConfig:
        return await registry.config(version, await existing_app(registry, app_id))

    with reporting_errors():
        config = run(redis_url, read)
    print_json(config_json(config))
