"""`fleetgate simulate fleet|owners` and `fleetgate loadtest`: simulated fleets, and load through the gatekeeper and
the vehicles."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fleetgate._output import reporting_errors
from fleetgate._registry import AppOption, RedisUrlOption, existing_app, run
from fleetgate.loadtest_view import LiveProgress, left_behind, summary_table
from schemas.access import derive
from schemas.application import DEFAULT_APP_ID
from services.errors import NotFoundError
from services.registry import Registry
from services.settings import Settings
from simulator.accounts import FLEET_PASSWORD, group_owners, store_owners
from simulator.cleanup import remove_leftovers
from simulator.fleet import generate_fleet, load_mix
from simulator.loadtest import LoadTestOptions, run_load_test, write_report
from simulator.owners import OwnerBehaviour, connect_owners, default_app_config
from simulator.workload import WorkloadMix

app = typer.Typer(help="Simulated fleets and owners, registered in the registry.", no_args_is_help=True)

SeedOption = Annotated[int, typer.Option(help="Seed: the same seed gives the same fleet and choices.")]
MixOption = Annotated[
    Path | None, typer.Option("--mix", help="Fleet mix TOML (the shape of simulator/fleet_mix.toml).", exists=False)
]
Probability = Annotated[float, typer.Option(min=0.0, max=1.0)]


@app.command("fleet")
def fleet_command(
    vehicles: Annotated[int, typer.Option(help="Vehicles to generate and register.", min=1)],
    seed: SeedOption = 1,
    mix: MixOption = None,
    redis_url: RedisUrlOption = None,
) -> None:
    """Generate a fleet (makes, models, years, powertrains, capability sets) and register it, with its owners'
    accounts (1 to 3 vehicles each) for Connect in live and simulated mode."""
    with reporting_errors():
        fleet = generate_fleet(vehicles, seed, load_mix(mix))
        owners = group_owners([v.id for v in fleet], seed)

        async def register(registry: Registry) -> int:
            registered = await registry.add_vehicles(fleet)
            await store_owners(registry.redis, registry.keys, owners)
            return registered

        registered = run(redis_url, register)
    by_powertrain = Counter(v.powertrain.value for v in fleet)
    typer.echo(f"registered {registered} vehicles ({fleet[0].id} .. {fleet[-1].id})")
    typer.echo("  " + ", ".join(f"{p} {n}" for p, n in by_powertrain.most_common()))
    typer.echo("  " + ", ".join(f"{m} {n}" for m, n in Counter(v.make for v in fleet).most_common()))
    sample = owners[0]
    typer.echo(
        f"{len(owners)} owner accounts for Connect, e.g. {sample.email} / password {FLEET_PASSWORD} "
        f"({len(sample.vehicle_ids)} vehicles; simulated accounts, one documented password)"
    )


@app.command("owners")
def owners_command(
    vehicles: Annotated[int, typer.Option(help="The fleet's size (as given to `simulate fleet`).", min=1)],
    seed: SeedOption = 1,
    mix: MixOption = None,
    uncheck: Annotated[float, typer.Option(help="Chance an owner unchecks each optional permission.")] = 0.15,
    app_id: AppOption = DEFAULT_APP_ID,
    redis_url: RedisUrlOption = None,
) -> None:
    """Each owner of the simulated fleet runs Connect with the app (--app), against its current config (the
    simulator's, published as the app's, if it has none) and under its Connection Filters."""
    with reporting_errors():
        fleet = generate_fleet(vehicles, seed, load_mix(mix))
        behaviour = OwnerBehaviour(uncheck=uncheck)

        async def connect_all(registry: Registry) -> tuple[int, int]:
            app = await existing_app(registry, app_id)
            try:
                config = await registry.config(app_id=app)
            except NotFoundError:
                config = await registry.publish_config(default_app_config(), app_id=app)
            world = await connect_owners(registry, fleet, behaviour, seed, app)
            everything = frozenset(derive(config))
            grants = [v.grant for v in world.vehicles if v.grant is not None]
            return len(grants), sum(1 for g in grants if g.permissions != everything)

        connected, partial = run(redis_url, connect_all)
    typer.echo(f"connected {connected} of {len(fleet)} vehicles; {partial} owners unchecked something")


def loadtest_command(
    vehicles: Annotated[int, typer.Option(help="Fleet size.", min=1, envvar="FLEETGATE_LOADTEST_VEHICLES")] = 1000,
    rate: Annotated[
        float,
        typer.Option(help="Target requests per second (open loop, Poisson).", min=1, envvar="FLEETGATE_LOADTEST_RATE"),
    ] = 1000,
    duration: Annotated[float, typer.Option(help="Seconds of load.", min=1, envvar="FLEETGATE_LOADTEST_DURATION")] = 10,
    producers: Annotated[int, typer.Option(help="Producer processes sharing the rate.", min=1)] = 1,
    workers: Annotated[int, typer.Option(help="Gatekeeper worker processes to start.", min=1)] = 1,
    external_gatekeeper: Annotated[
        bool, typer.Option("--external-gatekeeper", help="Use gatekeepers already running on the prefix.")
    ] = False,
    external_vehicles: Annotated[
        bool, typer.Option("--external-vehicles", help="Use a vehicles service already running on the prefix.")
    ] = False,
    seed: SeedOption = 1,
    mix: MixOption = None,
    report: Annotated[Path | None, typer.Option(help="Write report.json and report.html here.")] = None,
    grace: Annotated[float, typer.Option(help="Seconds to wait for the last decisions and responses.", min=0)] = 15,
    uncheck: Probability = 0.15,
    revoke: Probability = 0.02,
    reauth: Probability = 0.03,
    cleanup: Annotated[
        bool,
        typer.Option(
            "--cleanup",
            help="Afterwards, delete what the run created: its vehicles and their state, its connections and their "
            "indexes, its app with its configs and filters, its dedupe records. Never the streams' entries (other "
            "consumers may be reading them; trimming removes them).",
        ),
    ] = False,
    remove_only: Annotated[
        bool,
        typer.Option(
            "--remove-only",
            help="Run no load: delete what earlier runs left (the app fleetgate-loadtest, its connections, the "
            "lt-* vehicles and their state), then exit.",
        ),
    ] = False,
    redis_url: RedisUrlOption = None,
) -> None:
    """Set up a fleet and owners, run open-loop load through the gatekeeper and the vehicles, account for every
    request and every response.

    The run is an application of its own (fleetgate-loadtest, created or reused) with vehicles lt-000000...: it
    never changes another app's config, filters or connections, nor the vehicles of `simulate fleet` (sim-...).
    Gatekeepers or vehicles services already running on the prefix are not refused (a load test against a running
    deployment is legitimate) but named in a warning and in the report, since they share the load: use
    --external-gatekeeper/--external-vehicles to use only them, or stop them for a run of its own.

    Exits 1 when any request was lost, decided twice, or decided otherwise than the simulator intended, or when an
    ALLOWED one was not answered exactly once, a response had no ALLOWED decision, or a read contradicted the
    command before it.
    """
    if remove_only:
        with reporting_errors():
            removed = run(redis_url, remove_leftovers)
        typer.echo(f"removed {removed.vehicles:,} vehicles, {removed.connections:,} connections and the load test's "
                   f"app ({removed.keys:,} keys)")  # fmt: skip
        return
    with reporting_errors():
        settings = Settings() if redis_url is None else Settings(redis_url=redis_url)
        options = LoadTestOptions(
            redis_url=settings.redis_url,
            prefix=settings.key_prefix,
            vehicles=vehicles,
            rate=rate,
            duration_s=duration,
            producers=producers,
            seed=seed,
            gatekeepers=0 if external_gatekeeper else workers,
            vehicle_services=0 if external_vehicles else 1,
            grace_s=grace,
            mix=load_mix(mix),
            owners=OwnerBehaviour(uncheck=uncheck, revoke=revoke, reauth=reauth),
            workload=WorkloadMix(),
            shards=settings.shards,
            redis_cluster=settings.redis_cluster,
            cleanup=cleanup,
        )
        console = Console(stderr=True)
        with LiveProgress(console, options) as live:
            result = asyncio.run(run_load_test(options, live.update, live.warn))
    Console().print(summary_table(result))
    typer.echo(left_behind(options, result))
    if report is not None:
        data, page = write_report(result, report)
        typer.echo(f"wrote {data} and {page}")
    if not result.clean:
        raise typer.Exit(1)
