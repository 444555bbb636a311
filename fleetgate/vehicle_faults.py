"""`fleetgate vehicles fault|faults`: inject errors and delays into a simulated vehicle's answers, list and clear them
(simulator/vehicles/faults.py). Input is checked whole before anything is written: a bad one exits 2 in one line."""

from __future__ import annotations

import math
import time
from typing import Annotated, Any

import typer

from fleetgate._output import fail, print_json, reporting_errors
from fleetgate._registry import RedisUrlOption, run
from services.registry import Registry
from simulator.vehicles.clock import parse_duration
from simulator.vehicles.faults import MAX_DELAY_MS, RATE_LIMITED, Fault, FaultSet, check_target, error_name
from simulator.vehicles.store import load_faults, recorded_clock, update_faults

VehicleArgument = Annotated[str, typer.Argument(help="The vehicle's id.", show_default=False)]


def fault_command(  # the command line's options, one parameter each
    vehicle_id: VehicleArgument,
    fault_id: Annotated[str | None, typer.Argument(help="With --clear: the fault to clear (f1, f2, ...).")] = None,
    error: Annotated[
        str | None, typer.Option(help="TYPE/CODE or a bare code: ASLEEP, UPSTREAM/NO_RESPONSE, RATE_LIMIT/VEHICLE, ...")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="A signal code or command name (default: every one of the vehicle's).")
    ] = None,
    always: Annotated[bool, typer.Option("--always", help="On every request (the default).")] = False,
    probability: Annotated[
        float | None, typer.Option(help="On a share P of requests, picked by a hash of each request's id.")
    ] = None,
    next_n: Annotated[int | None, typer.Option("--next", help="On the next N requests, then it goes.")] = None,
    retry_after: Annotated[
        int | None, typer.Option(help="With RATE_LIMIT/VEHICLE: retry_after_s (default 60).")
    ] = None,
    delay_ms: Annotated[int | None, typer.Option(help="Write the response this many milliseconds late.")] = None,
    for_: Annotated[
        str | None, typer.Option("--for", help="Only for this long in simulated time from now: 90s, 10m, 2h.")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Clear the fault FAULT_ID, or all with --all.")] = False,
    clear_all: Annotated[bool, typer.Option("--all", help="With --clear: every fault of the vehicle.")] = False,
    redis_url: RedisUrlOption = None,
) -> None:
    """Add a fault to a simulated vehicle (an --error, a --delay-ms, or both), or --clear one or --all."""
    adding = error is not None or delay_ms is not None
    if clear:
        if adding or target or always or probability is not None or next_n is not None or for_:
            fail("--clear takes a fault id or --all, and no other option")
        if (fault_id is None) == (not clear_all):
            fail("say which faults to clear: --clear FAULT_ID, or --clear --all")
        _clear(vehicle_id, None if clear_all else [fault_id or ""], redis_url)
        return
    if fault_id is not None or clear_all:
        fail(f"a fault id ({fault_id}) or --all goes with --clear only" if fault_id else "--all goes with --clear only")
    if not adding:
        fail("say what to inject: --error CODE, --delay-ms MS, or both (or --clear)")
    fields = _fault_fields(error, always, probability, next_n, retry_after, delay_ms)
    window_s = None if for_ is None else _window(for_)
    _add(vehicle_id, target, fields, window_s, redis_url)


def faults_command(vehicle_id: VehicleArgument, redis_url: RedisUrlOption = None) -> None:
    """List a simulated vehicle's faults (JSON), in the order they apply."""

    async def listing(registry: Registry) -> dict[str, Any]:
        vehicle = await registry.vehicle(vehicle_id)
        faults, _ = await load_faults(registry.redis, registry.keys, vehicle.id)
        return _shown(vehicle.id, faults.pruned(await _now(registry)))

    with reporting_errors():
        print_json(run(redis_url, listing))


def _fault_fields(  # the command line's options, checked together
    error: str | None,
    always: bool,
    probability: float | None,
    next_n: int | None,
    retry_after: int | None,
    delay_ms: int | None,
) -> dict[str, Any]:
    """The new fault's fields, each option checked (one line, exit 2, on the first that is wrong)."""
    if always + (probability is not None) + (next_n is not None) > 1:
        fail("give at most one of --always, --probability P and --next N")
    fields: dict[str, Any] = {}
    if error is not None:
        try:
            fields["error"] = error_name(error)
        except ValueError as exc:
            fail(f"--error: {exc}")
    if probability is not None:
        if not 0 <= probability <= 1:
            fail(f"--probability {probability:g}: a probability is from 0 to 1")
        fields |= {"mode": "probability", "probability": probability}
    if next_n is not None:
        if next_n < 1:
            fail(f"--next {next_n}: the number of requests is 1 or more")
        fields |= {"mode": "next", "remaining": next_n}
    if retry_after is not None:
        if fields.get("error") != RATE_LIMITED:
            fail(f"--retry-after goes with --error {RATE_LIMITED} only")
        if not 1 <= retry_after <= 86_400:
            fail(f"--retry-after {retry_after}: seconds from 1 to 86400")
        fields["retry_after_s"] = retry_after
    if delay_ms is not None:
        if not 1 <= delay_ms <= MAX_DELAY_MS:
            fail(f"--delay-ms {delay_ms}: milliseconds from 1 to {MAX_DELAY_MS}")
        fields["delay_ms"] = delay_ms
    return fields


def _window(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        fail(f"--for: {exc}")
    if not 0 < seconds < math.inf:
        fail(f"--for {text}: a duration above zero")
    return seconds


def _add(vehicle_id: str, target: str | None, fields: dict[str, Any], window_s: float | None, url: str | None) -> None:
    async def add(registry: Registry) -> dict[str, Any]:
        vehicle = await registry.vehicle(vehicle_id)
        if target is not None:
            check_target(vehicle, target)
        now = await _now(registry)
        window = {} if window_s is None else {"start": now, "until": now + window_s}
        fault = Fault.model_validate({"target": target, **fields, **window})
        _, after = await update_faults(registry.redis, registry.keys, vehicle.id, lambda f: f.added(fault, now))
        return {"vehicle_id": vehicle.id, "added": after.faults[-1].shown()}

    with reporting_errors():
        try:
            print_json(run(url, add))
        except ValueError as exc:  # an unknown or incapable target, a vehicle holding the most faults
            fail(str(exc))


def _clear(vehicle_id: str, ids: list[str] | None, url: str | None) -> None:
    async def clear(registry: Registry) -> dict[str, Any]:
        vehicle = await registry.vehicle(vehicle_id)
        now = await _now(registry)
        before, after = await update_faults(registry.redis, registry.keys, vehicle.id, lambda f: f.cleared(ids, now))
        kept = {fault.id for fault in after.faults}
        return {**_shown(vehicle.id, after), "cleared": [f.id for f in before.faults if f.id not in kept]}

    with reporting_errors():
        try:
            print_json(run(url, clear))
        except ValueError as exc:  # a fault id the vehicle does not hold
            fail(f"vehicle {vehicle_id}: {exc}")


async def _now(registry: Registry) -> float:
    """Simulated time now: by the deployment's clock if one was recorded (a fault never records one)."""
    recorded = await recorded_clock(registry.redis, registry.keys)
    return time.time() if recorded is None else recorded.now()


def _shown(vehicle_id: str, faults: FaultSet) -> dict[str, Any]:
    return {"vehicle_id": vehicle_id, "faults": [fault.shown() for fault in faults.faults]}
