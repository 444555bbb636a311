"""`fleetgate connect`: the Connect flow from the command line (authorize, re-authenticate, revoke)."""

from __future__ import annotations

from typing import Annotated

import typer

from fleetgate._output import print_json, reporting_errors
from fleetgate._registry import AppOption, RedisUrlOption, connection_json, existing_app, run
from schemas.application import DEFAULT_APP_ID
from schemas.connection import Connection
from services.registry import ConnectService, Registry

app = typer.Typer(help="Connections: what each owner granted, re-authentication and revocation.", no_args_is_help=True)

ScopeOption = Annotated[
    str | None, typer.Option("--scope", help='Override the current config, e.g. "required:read_odometer read_vin".')
]
UncheckOption = Annotated[
    list[str] | None, typer.Option("--uncheck", help="A permission the owner unchecks on the grant screen.")
]
ConnectionArgument = Annotated[str, typer.Argument(help="The connection's id.")]


@app.command("authorize")
def authorize_command(
    vehicle: Annotated[str, typer.Option("--vehicle", help="The vehicle's id.")],
    scope: ScopeOption = None,
    uncheck: UncheckOption = None,
    app_id: AppOption = DEFAULT_APP_ID,
    redis_url: RedisUrlOption = None,
) -> None:
    """Connect a vehicle to the app: its current config's permissions (or --scope), minus what the owner unchecks."""

    async def authorize(registry: Registry) -> Connection:
        app = await existing_app(registry, app_id)
        return await ConnectService(registry).authorize(vehicle, scope=scope, unchecked=uncheck or (), app_id=app)

    with reporting_errors():
        connection = run(redis_url, authorize)
    print_json(connection_json(connection))


@app.command("reauth")
def reauth_command(
    connection_id: ConnectionArgument,
    scope: ScopeOption = None,
    uncheck: UncheckOption = None,
    redis_url: RedisUrlOption = None,
) -> None:
    """Re-authenticate: replace an active connection's scopes with its app's current config's (or --scope)."""
    with reporting_errors():
        connection = run(
            redis_url,
            lambda registry: ConnectService(registry).reauthorize(connection_id, scope=scope, unchecked=uncheck or ()),
        )
    print_json(connection_json(connection))


@app.command("revoke")
def revoke_command(connection_id: ConnectionArgument, redis_url: RedisUrlOption = None) -> None:
    """Revoke a connection. Final: it can never be used or re-authenticated again."""
    with reporting_errors():
        connection = run(redis_url, lambda registry: ConnectService(registry).revoke(connection_id))
    print_json(connection_json(connection))


@app.command("show")
def show_command(connection_id: ConnectionArgument, redis_url: RedisUrlOption = None) -> None:
    """Print a connection."""
    with reporting_errors():
        connection = run(redis_url, lambda registry: registry.connection(connection_id))
    print_json(connection_json(connection))
