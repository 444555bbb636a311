"""`fleetgate filters`: Connection Filters, which powertrains may connect at all."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from fleetgate._output import print_json, reporting_errors
from fleetgate._registry import AppOption, RedisUrlOption, existing_app, run
from schemas.application import DEFAULT_APP_ID
from schemas.grant import ConnectionFilters, FilterPowertrain
from services.registry import Registry

app = typer.Typer(help="Connection Filters: which powertrains may connect (ICE covers HEV).", no_args_is_help=True)


def filters_json(filters: ConnectionFilters) -> dict[str, Any]:
    return {"allow": sorted(p.value for p in filters.powertrains), "allow_unknown": filters.allow_unknown}


@app.command("set")
def set_command(
    allow: Annotated[
        list[FilterPowertrain] | None,
        typer.Option("--allow", help="A powertrain that may connect (repeat); none means any.", case_sensitive=False),
    ] = None,
    allow_unknown: Annotated[bool, typer.Option("--allow-unknown", help="Let UNKNOWN powertrains connect.")] = False,
    app_id: AppOption = DEFAULT_APP_ID,
    redis_url: RedisUrlOption = None,
) -> None:
    """Replace the app's Connection Filters; they apply to its authorizations from now on."""
    filters = ConnectionFilters(powertrains=frozenset(allow or ()), allow_unknown=allow_unknown)

    async def store(registry: Registry) -> None:
        await registry.set_filters(filters, await existing_app(registry, app_id))

    with reporting_errors():
        run(redis_url, store)
    print_json(filters_json(filters))


@app.command("show")
def show_command(app_id: AppOption = DEFAULT_APP_ID, redis_url: RedisUrlOption = None) -> None:
    """Print the app's Connection Filters in force."""

    async def read(registry: Registry) -> ConnectionFilters:
        return await registry.filters(await existing_app(registry, app_id))

    with reporting_errors():
        filters = run(redis_url, read)
    print_json(filters_json(filters))
