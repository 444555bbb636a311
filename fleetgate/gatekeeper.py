"""`fleetgate gatekeeper`: run workers, and check one is alive (for container health checks)."""

from __future__ import annotations

import socket
from typing import Annotated, Any

import typer
from redis.crc import key_slot
from rich.console import Console
from rich.table import Table

from fleetgate._output import print_json, reporting_errors
from fleetgate._registry import RedisUrlOption, run
from services.errors import RedisUnavailableError
from services.gatekeeper.processes import run_workers
from services.keyspace import shard_slots, shard_tag
from services.redis_client import eviction_policies
from services.registry import Registry
from services.settings import Settings
from services.streams import live_consumers

CHECK_TIMEOUT_S = 3.0
"""A health check answers within about this long, whatever the network does (a container's check has a timeout)."""

app = typer.Typer(help="The gatekeeper: decides every request on the requests stream.", no_args_is_help=True)


@app.command("run")
def run_command(
    workers: Annotated[int, typer.Option(help="Worker processes to run (each one consumer in the group).", min=1)] = 1,
    shards: Annotated[
        str | None,
        typer.Option(
            help="The shards to consume, as 0-2 or 0,3 (default: $FLEETGATE_WORKER_SHARDS, else every shard).",
            show_default=False,
        ),
    ] = None,
    redis_url: RedisUrlOption = None,
) -> None:
    """Run gatekeeper workers until SIGTERM or Ctrl-C; each finishes its batch and leaves nothing pending."""
    overrides: dict[str, Any] = {"redis_url": redis_url, "worker_shards": shards}
    with reporting_errors():
        settings = Settings(**{name: value for name, value in overrides.items() if value is not None})
    raise typer.Exit(run_workers(settings, workers))


@app.command("shards")
def shards_command(
    shards: Annotated[
        int | None, typer.Option("--count", help="Shards (default: $FLEETGATE_SHARDS).", min=1, show_default=False)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """The streams of every shard and the cluster slot of each: what producers and consumers name (no Redis needed)."""
    with reporting_errors():
        settings = Settings() if shards is None else Settings(shards=shards)
    count = settings.keys.shards
    vehicle_slots = [(slots[0], slots[-1]) for slots in (shard_slots(i, count) for i in range(count))]
    rows = [
        {
            "shard": shard.index,
            "tag": shard_tag(shard.index, count) if count > 1 else None,
            "vehicle_slots": list(vehicle_slots[shard.index]),
            "slot": key_slot(shard.requests.encode()),
            "requests": shard.requests,
            "decisions": shard.decisions,
            "deadletter": shard.deadletter,
            "connection_events": shard.connection_events,
        }
        for shard in settings.keys.all_shards
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("shard", "vehicle ids of slots", "its keys' slot", "requests stream", box=None)
    for row, (low, high) in zip(rows, vehicle_slots, strict=True):
        table.add_row(str(row["shard"]), f"{low}-{high}", str(row["slot"]), str(row["requests"]))
    console = Console()
    console.print(table)
    console.print(
        "Each shard's decisions, deadletter and connection-events streams share its requests stream's prefix."
    )


@app.command("check")
def check_command(
    any_host: Annotated[
        bool, typer.Option("--any-host", help="Accept a worker on any host, not only this one.")
    ] = False,
    redis_url: RedisUrlOption = None,
) -> None:
    """Exit 0 when Redis answers, does not evict keys (or FLEETGATE_ALLOW_EVICTION), and a worker on this host has a
    fresh heartbeat; else 1. It never waits long: a Redis that does not answer within 3 s is unhealthy."""
    host = "" if any_host else socket.gethostname()

    async def state(registry: Registry) -> tuple[list[str], list[str]]:
        policies = set((await eviction_policies(registry.redis)).values())
        return await live_consumers(registry.redis, registry.keys, host), sorted(policies - {"noeviction"})

    with reporting_errors():
        settings = Settings() if redis_url is None else Settings(redis_url=redis_url)
        try:
            beating, evicting = run(redis_url, state, refuse_evicting=False, socket_timeout_s=CHECK_TIMEOUT_S)
        except RedisUnavailableError as exc:  # unhealthy, not a usage error: container runtimes reserve exit 2
            typer.echo(f"unhealthy: {exc}", err=True)
            raise typer.Exit(1) from None
    if evicting and not settings.allow_eviction:
        typer.echo(f"unhealthy: Redis evicts keys (maxmemory-policy {', '.join(evicting)}; needs noeviction)", err=True)
        raise typer.Exit(1)
    if not beating:
        typer.echo(f"unhealthy: no fresh gatekeeper heartbeat{'' if any_host else ' on ' + host}", err=True)
        raise typer.Exit(1)
    policy = f"maxmemory-policy {', '.join(evicting)} (allowed)" if evicting else "maxmemory-policy noeviction"
    typer.echo(f"healthy: {len(beating)} worker(s) beating; {policy}")
