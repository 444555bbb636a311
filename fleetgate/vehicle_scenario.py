"""`fleetgate vehicles run SCENARIO`: play a scenario file's timed steps on the simulated vehicles
(simulator/vehicles/scenario.py, scenario_run.py), one JSON line per step as it is applied."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fleetgate._output import reporting_errors
from fleetgate._registry import RedisUrlOption, run
from services.registry import Registry
from services.settings import Settings
from simulator.vehicles.scenario import load_scenario, plan
from simulator.vehicles.scenario_run import Applied, ScenarioRun, registered

REFUSED_STEP = 1


def run_command(
    scenario: Annotated[Path, typer.Argument(help="A scenario file (TOML; see docs/scenario-example.toml).")],
    speed: Annotated[
        float | None,
        typer.Option(
            help="Simulated seconds per real second, if this run records the clock (default: FLEETGATE_SIM_SPEED)."
        ),
    ] = None,
    redis_url: RedisUrlOption = None,
) -> None:
    """Play a scenario: its faults at once (with their windows), each state change at its simulated time.

    Exit 0 when every step applied, 1 when the vehicle's state refused some (printed), 2 when the file or the world
    does not fit it (one line; nothing applied)."""
    with reporting_errors():
        parsed = load_scenario(scenario)
        settings = Settings() if redis_url is None else Settings(redis_url=redis_url)

        async def play(registry: Registry) -> list[Applied]:
            found = await registered(registry, [step.vehicle for step in parsed.steps])
            checked = plan(scenario, parsed, found, settings.sim_seed)
            vehicles = {vehicle_id: vehicle for vehicle_id, vehicle in found.items() if vehicle is not None}
            runner = ScenarioRun(
                registry.redis, registry.keys, checked, vehicles=vehicles, seed=settings.sim_seed, report=_print
            )
            await runner.prepare(settings.sim_speed if speed is None else speed, speed_given=speed is not None)
            return await runner.play()

        applied = run(redis_url, play)
    if any(step.refused for step in applied):
        raise typer.Exit(REFUSED_STEP)


def _print(applied: Applied) -> None:
    typer.echo(json.dumps(applied.json()))
