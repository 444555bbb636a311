"""`fleetgate vehicles serve|check|state|set`: the simulated vehicles that answer (simulator/vehicles/)."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from fleetgate._output import fail, print_json, reporting_errors
from fleetgate._registry import RedisUrlOption, run
from schemas.catalog import get_catalog
from services.errors import RedisUnavailableError
from services.registry import Registry
from services.settings import Settings
from services.streams import live_consumers
from simulator.vehicles import SignalReading, VehicleProblem, read_signal, set_value
from simulator.vehicles.run import run_service
from simulator.vehicles.store import load_states, settings_clock, update_state

CHECK_TIMEOUT_S = 3.0


def _settings(redis_url: str | None) -> Settings:
    with reporting_errors():
        return Settings() if redis_url is None else Settings(redis_url=redis_url)


def serve_command(redis_url: RedisUrlOption = None) -> None:
    """Answer every ALLOWED decision as the simulated vehicle would, on the responses stream, until SIGTERM."""
    raise typer.Exit(run_service(_settings(redis_url)))


def check_command(
    any_host: Annotated[
        bool, typer.Option("--any-host", help="Accept a service on any host, not only this one.")
    ] = False,
    redis_url: RedisUrlOption = None,
) -> None:
    """Exit 0 when a vehicles service on this host has a fresh heartbeat, else 1 (for container health checks)."""
    host = "" if any_host else socket.gethostname()

    async def beating(registry: Registry) -> list[str]:
        return await live_consumers(registry.redis, registry.keys, host, prefix=registry.keys.vehicles_heartbeat_prefix)

    with reporting_errors():
        try:
            live = run(redis_url, beating, refuse_evicting=False, socket_timeout_s=CHECK_TIMEOUT_S)
        except RedisUnavailableError as exc:
            typer.echo(f"unhealthy: {exc}", err=True)
            raise typer.Exit(1) from None
    if not live:
        typer.echo(f"unhealthy: no fresh vehicles service heartbeat{'' if any_host else ' on ' + host}", err=True)
        raise typer.Exit(1)
    typer.echo(f"healthy: {len(live)} vehicles service(s) beating")


def state_command(
    vehicle_id: Annotated[str, typer.Argument(help="The vehicle's id.")],
    redis_url: RedisUrlOption = None,
) -> None:
    """Every signal the vehicle is capable of, as it would answer now (JSON), with its simulated time.

    A signal the vehicle would refuse now (out of coverage, remote access off, ...) shows the refusal and its last
    value."""
    settings = _settings(redis_url)

    async def current(registry: Registry) -> dict[str, Any]:
        vehicle = await registry.vehicle(vehicle_id)
        now = (await settings_clock(registry.redis, registry.keys, settings)).now()
        stored = (await load_states(registry.redis, registry.keys, [vehicle], settings.sim_seed, now))[vehicle.id]
        signals = {
            code: _shown(read_signal(stored.state, vehicle, code, now), settings.sim_refuse_asleep)
            for code in sorted(c for c in vehicle.capabilities if c in _signal_codes())
        }
        at = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")
        return {"vehicle_id": vehicle.id, "simulated_time": at, "version": stored.version, "signals": signals}

    with reporting_errors():
        print_json(run(redis_url, current))


def set_command(
    vehicle_id: Annotated[str, typer.Argument(help="The vehicle's id.")],
    signal: Annotated[str, typer.Argument(help="A signal code, e.g. tractionbattery-stateofcharge.")],
    value: Annotated[str, typer.Argument(help='The new value as JSON, e.g. 42 or {"value": 42, "unit": "percent"}.')],
    redis_url: RedisUrlOption = None,
) -> None:
    """Set a signal's value on a simulated vehicle (what later reads answer); nothing is written on a bad value."""
    try:
        parsed = json.loads(value)
    except ValueError:
        fail(f"value {value!r} is not JSON (a number, true/false, a quoted string or an object)")
    settings = _settings(redis_url)

    async def write(registry: Registry) -> dict[str, Any]:
        vehicle = await registry.vehicle(vehicle_id)
        now = (await settings_clock(registry.redis, registry.keys, settings)).now()
        changed = await update_state(
            registry.redis,
            registry.keys,
            vehicle,
            seed=settings.sim_seed,
            now=now,
            change=lambda state: set_value(state, vehicle, signal, parsed, now),
        )
        return {
            "vehicle_id": vehicle.id,
            signal: _shown(read_signal(changed, vehicle, signal, now), settings.sim_refuse_asleep),
        }

    with reporting_errors():
        try:
            print_json(run(redis_url, write))
        except ValueError as exc:  # set_value's one-line reason: an unknown signal, a value of the wrong shape
            fail(str(exc))


def _shown(reading: SignalReading | VehicleProblem, refuse_asleep: bool) -> Any:
    """A signal as the vehicles service would answer it: its body (an asleep vehicle's last reported one, unless
    FLEETGATE_SIM_REFUSE_ASLEEP); when the vehicle would refuse it, the refusal and its last value."""
    stale = None if isinstance(reading, SignalReading) else reading.stale
    if isinstance(reading, SignalReading):
        return reading.body
    if reading.code == "ASLEEP" and not refuse_asleep and stale is not None:
        return stale.body
    return {"refused": f"{reading.type}/{reading.code}", "last": None if stale is None else stale.body}


def _signal_codes() -> frozenset[str]:
    return frozenset(signal.code for signal in get_catalog().signals)
