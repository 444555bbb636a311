"""`fleetgate vehicles`: register vehicles and read them back."""

from __future__ import annotations

from typing import Annotated

import typer

from fleetgate._output import print_json, reporting_errors
from fleetgate._registry import RedisUrlOption, run, vehicle_json
from schemas.powertrain import Powertrain
from schemas.vehicle import Vehicle, placeholder_vin
from services.registry import Registry

app = typer.Typer(
    help="Vehicles: the registry's records (powertrain, capabilities) and the simulated vehicles that answer.",
    no_args_is_help=True,
)


@app.command("add")
def add_command(
    vehicle_id: Annotated[str, typer.Option("--id", help="The vehicle's id.")],
    make: Annotated[str, typer.Option(help="e.g. Tesla")],
    model: Annotated[str, typer.Option(help="e.g. Model 3")],
    year: Annotated[int, typer.Option(help="Model year.")],
    powertrain: Annotated[Powertrain, typer.Option(help="ICE, HEV, PHEV, BEV or UNKNOWN.", case_sensitive=False)],
    vin: Annotated[str | None, typer.Option(help="17 characters; derived from the id when omitted.")] = None,
    lacks: Annotated[
        list[str] | None, typer.Option("--lacks", help="A signal or command the powertrain has but this vehicle lacks.")
    ] = None,
    adds: Annotated[
        list[str] | None, typer.Option("--adds", help="A signal or command beyond the powertrain's defaults.")
    ] = None,
    replace: Annotated[bool, typer.Option(help="Overwrite a vehicle with the same id.")] = False,
    redis_url: RedisUrlOption = None,
) -> None:
    """Register a vehicle; its capabilities follow its powertrain, plus --adds, minus --lacks."""
    with reporting_errors():
        vehicle = Vehicle.with_defaults(
            id=vehicle_id,
            vin=vin or placeholder_vin(vehicle_id),
            make=make,
            model=model,
            year=year,
            powertrain=powertrain,
            adds=adds or (),
            lacks=lacks or (),
        )

        async def add(registry: Registry) -> None:
            await registry.add_vehicle(vehicle, replace=replace)

        run(redis_url, add)
    print_json(vehicle_json(vehicle))


@app.command("show")
def show_command(
    vehicle_id: Annotated[str, typer.Argument(help="The vehicle's id.")], redis_url: RedisUrlOption = None
) -> None:
    """Print a registered vehicle."""
    with reporting_errors():
        vehicle = run(redis_url, lambda registry: registry.vehicle(vehicle_id))
    print_json(vehicle_json(vehicle))


@app.command("list")
def list_command(
    limit: Annotated[int, typer.Option(help="At most this many, by id.", min=1)] = 100,
    redis_url: RedisUrlOption = None,
) -> None:
    """Print registered vehicles, sorted by id."""

    async def listing(registry: Registry) -> list[Vehicle | None]:
        return await registry.vehicles_by_id(await registry.vehicle_ids(limit))

    with reporting_errors():
        vehicles = run(redis_url, listing)
    print_json([vehicle_json(v) for v in vehicles if v is not None])
