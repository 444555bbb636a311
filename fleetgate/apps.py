"""`fleetgate apps`: applications, the clients of Connect and the API (create, list, show, rotate a secret)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from fleetgate._output import print_json, reporting_errors
from fleetgate._registry import RedisUrlOption, run
from schemas.application import Application, AppMode
from services.registry import AppStore, CreatedApp, Registry

app = typer.Typer(
    help="Applications: client ids and secrets, redirect URIs, modes; each with its own configs and filters.",
    no_args_is_help=True,
)
AppArgument = Annotated[str, typer.Argument(help="The application's client id (`default` for the default app).")]


def app_json(application: Application) -> dict[str, Any]:
    return {
        "client_id": application.id,
        "name": application.name,
        "mode": application.mode.value,
        "redirect_uris": list(application.redirect_uris),
        "client_secrets": application.secrets,
        "permissions": list(application.permissions) or "any",
        "created_at": None
        if application.created_at is None
        else application.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


def _store(registry: Registry) -> AppStore:
    return AppStore(registry.redis, registry.keys)


@app.command("create")
def create_command(
    name: Annotated[str, typer.Option("--name", help="The application's name, shown on the Connect screens.")],
    redirect_uri: Annotated[
        list[str],
        typer.Option("--redirect-uri", help="Where Connect may send users back (repeat; the first is the default)."),
    ],
    mode: Annotated[AppMode, typer.Option("--mode", help="Which accounts Connect offers.")] = AppMode.LIVE,
    client_id: Annotated[
        str | None, typer.Option("--client-id", help="Choose the client id (letters, digits, . _ -) [default: a UUID].")
    ] = None,
    permission: Annotated[
        list[str] | None,
        typer.Option("--permission", help="A permission the app may request in Connect (repeat) [default: any]."),
    ] = None,
    redis_url: RedisUrlOption = None,
) -> None:
    """Register an application; prints its client id, client secret and management token (shown only once)."""

    async def create(registry: Registry) -> CreatedApp:
        return await _store(registry).create(name, redirect_uri, mode, app_id=client_id, permissions=permission or ())

    with reporting_errors():
        created = run(redis_url, create)
    print_json(
        app_json(created.app) | {"client_secret": created.client_secret, "management_token": created.management_token}
    )


@app.command("list")
def list_command(redis_url: RedisUrlOption = None) -> None:
    """List the applications, the default one first."""
    with reporting_errors():
        apps = run(redis_url, lambda registry: _store(registry).all())
    print_json([app_json(a) for a in apps])


@app.command("show")
def show_command(app_id: AppArgument, redis_url: RedisUrlOption = None) -> None:
    """Print an application (never its secrets: only how many are valid)."""
    with reporting_errors():
        application = run(redis_url, lambda registry: _store(registry).get(app_id))
    print_json(app_json(application))


@app.command("rotate-secret")
def rotate_secret_command(app_id: AppArgument, redis_url: RedisUrlOption = None) -> None:
    """Add a new client secret (shown once); the three newest stay valid, so an older one stops working."""
    with reporting_errors():
        secret = run(redis_url, lambda registry: _store(registry).rotate_secret(app_id))
    print_json({"client_id": app_id, "client_secret": secret})
