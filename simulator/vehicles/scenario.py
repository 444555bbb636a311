"""Scenarios: timed steps for simulated vehicles, read from TOML and checked whole (`fleetgate vehicles run FILE`).

    description = "..."               # optional
    start = 2026-11-30T03:00:00Z      # optional: the simulated time step offsets count from (a replay needs it)

    [[steps]]
    at = "90s"                        # offset from the start: 250ms, 90s, 10m, 2h, 1h30m, 1d
    vehicle = "veh-1"
    set = "<signal code>"             # a settable signal, with `value` as `fleetgate vehicles set` takes it; or one of
    plug = true                       # plugged in (false: unplugged)
    trip = { latitude = 52.52, longitude = 13.405 }   # sets off there now, if parked with energy left
    offline = "20m"                   # out of mobile coverage that long
    asleep = "1h"                     # asleep that long, then woken
    fault = { error = "ASLEEP", target = "<signal or command>", next = 2, for = "10m", name = "nap" }
    clear = "nap"                     # this scenario's faults of that name on the vehicle, or "all" its faults

A fault takes faults.py's fields (error, target, delay_ms, probability, next, retry_after_s), `for` (its window: from
its step's time for that long) and a `name` a later `clear` can use. A file with a typo (an unknown key, signal,
vehicle or fault name, a bad duration or value type) is refused before anything is applied, in one line naming the file,
the step (counted from 1, in file order) and the problem.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.vehicle import Vehicle
from simulator.errors import SimulatorError
from simulator.vehicles.clock import parse_duration
from simulator.vehicles.faults import MAX_FAULTS, Fault, check_target
from simulator.vehicles.overrides import set_value
from simulator.vehicles.profile import profile_for
from simulator.vehicles.read import capable_signal
from simulator.vehicles.scripted import drive_to, fall_asleep, go_offline, plug
from simulator.vehicles.signal_map import signal_map
from simulator.vehicles.state import VehicleState

Change = Callable[[VehicleState, Vehicle, float], VehicleState]
"""A pure state change at a simulated time (raises ValueError when the state model does not allow it)."""
ACTIONS = ("set", "plug", "trip", "offline", "asleep", "fault", "clear")


class ScenarioError(SimulatorError, ValueError):
    """A scenario that cannot be played as written; the message names the file, the step and the problem."""


def _duration(text: str) -> float:
    seconds = parse_duration(text)
    if seconds <= 0:
        raise ValueError(f"duration {text!r} is not above zero")
    return seconds


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class FaultStep(_Strict):
    error: str | None = None
    target: str | None = None
    delay_ms: int = 0
    probability: float | None = None
    next: int | None = None
    retry_after_s: int | None = None
    for_: str | None = Field(default=None, alias="for")
    name: str | None = None

    def fault(self) -> Fault:
        """The fault with a window relative to its step: start 0, until `for` (None: until cleared)."""
        mode = "probability" if self.probability is not None else "next" if self.next is not None else "always"
        fields = self.model_dump(exclude={"for_", "name", "next"}, exclude_none=True)
        until = None if self.for_ is None else _duration(self.for_)
        return Fault.model_validate({**fields, "mode": mode, "remaining": self.next, "start": 0.0, "until": until})


class TripTo(_Strict):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class Step(_Strict):
    at: str
    vehicle: str
    set: str | None = None
    value: Any = None
    plug: bool | None = None
    trip: TripTo | None = None
    offline: str | None = None
    asleep: str | None = None
    fault: FaultStep | None = None
    clear: str | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        given = [name for name in ACTIONS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"a step does exactly one of {', '.join(ACTIONS)}; this one: {', '.join(given) or 'none'}")
        if ("value" in self.model_fields_set) != (self.set is not None):
            raise ValueError("`value` goes with `set`, and `set` needs one")
        return self

    @property
    def offset(self) -> float:
        return parse_duration(self.at)


class ScenarioFile(_Strict):
    description: str = ""
    start: AwareDatetime | None = None
    steps: list[Step] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Happening:
    """A change to one vehicle at `offset` seconds of simulated time from the scenario's start."""

    offset: float
    step: int
    vehicle_id: str
    did: str
    change: Change | None
    """None: the vehicle's faults that started by then are cleared."""


@dataclass(frozen=True, slots=True)
class PlannedFault:
    step: int
    vehicle_id: str
    fault: Fault
    """Its window relative to the scenario's start (the runner adds the start)."""


@dataclass(frozen=True, slots=True)
class Plan:
    """A scenario checked against the registry: its faults, written first, and its changes in time order."""

    path: str
    start: float | None
    happenings: tuple[Happening, ...]
    faults: tuple[PlannedFault, ...]


def load_scenario(path: Path) -> ScenarioFile:
    """The scenario file parsed; ScenarioError (one line: file, step, problem) for anything mistyped."""
    try:
        parsed = ScenarioFile.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read it: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not TOML: {exc}") from exc
    except ValidationError as exc:
        raise ScenarioError(f"{path}: {_located(exc)}") from exc
    for number, step in enumerate(parsed.steps, start=1):
        try:
            step.offset  # noqa: B018  # parsed here, so that a bad duration is refused before anything is applied
            for duration in (step.offline, step.asleep):
                if duration is not None:
                    _duration(duration)
        except ValueError as exc:
            raise ScenarioError(f"{path}: step {number}: {exc}") from exc
        try:
            if step.fault is not None:
                step.fault.fault()
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            where = ".".join(["fault", *map(str, error["loc"])])
            message = error["msg"].removeprefix("Value error, ")
            raise ScenarioError(f"{path}: step {number}: {where}: {message}") from exc
        except ValueError as exc:
            raise ScenarioError(f"{path}: step {number}: fault: {exc}") from exc
    return parsed


def plan(path: Path, scenario: ScenarioFile, vehicles: Mapping[str, Vehicle | None], seed: int) -> Plan:
    """The scenario's faults and changes for these registered vehicles; ScenarioError for a step naming an unknown
    vehicle or fault, a signal the vehicle cannot have set, a target it lacks, or more faults than it may hold."""
    ordered = sorted(enumerate(scenario.steps, start=1), key=lambda numbered: numbered[1].offset)
    happenings: list[Happening] = []
    faults: list[PlannedFault] = []
    names: dict[tuple[str, str], list[int]] = {}  # (vehicle, fault name) -> indexes into faults
    for number, step in ordered:
        try:
            vehicle = vehicles.get(step.vehicle)
            if vehicle is None:
                raise ValueError(f"unknown vehicle {step.vehicle!r}")
            if step.fault is not None:
                fault = step.fault.fault()
                if fault.target is not None:
                    check_target(vehicle, fault.target)
                window = {"start": step.offset, "until": None if fault.until is None else step.offset + fault.until}
                if step.fault.name is not None:
                    names.setdefault((vehicle.id, step.fault.name), []).append(len(faults))
                faults.append(PlannedFault(number, vehicle.id, fault.model_copy(update=window)))
                if sum(f.vehicle_id == vehicle.id for f in faults) > MAX_FAULTS:
                    raise ValueError(f"more than {MAX_FAULTS} faults on vehicle {vehicle.id}")
            elif step.clear is not None:
                _end_faults(faults, names, vehicle.id, step.clear, step.offset)
                happenings.append(Happening(step.offset, number, vehicle.id, f"clear {step.clear}", None))
            else:
                happenings += _changes(step, number, vehicle, seed)
        except ValueError as exc:
            raise ScenarioError(f"{path}: step {number}: {exc}") from exc
    happenings.sort(key=lambda h: h.offset)  # stable: at the same time, in file order
    start = None if scenario.start is None else scenario.start.timestamp()
    return Plan(str(path), start, tuple(happenings), tuple(faults))


def _end_faults(
    faults: list[PlannedFault], names: dict[tuple[str, str], list[int]], vehicle_id: str, name: str, at: float
) -> None:
    """A `clear` step ends, at `at`, the vehicle's faults of that name (or all of them) started by then."""
    if name == "all":
        chosen = [i for i, f in enumerate(faults) if f.vehicle_id == vehicle_id]
    elif (vehicle_id, name) in names:
        chosen = names[(vehicle_id, name)]
    else:
        raise ValueError(f"clear: no fault named {name!r} on vehicle {vehicle_id} before this step")
    for index in chosen:
        fault = faults[index].fault
        if fault.until is None or fault.until > at:
            faults[index] = PlannedFault(faults[index].step, vehicle_id, fault.model_copy(update={"until": at}))


def _changes(step: Step, number: int, vehicle: Vehicle, seed: int) -> list[Happening]:
    """The state changes of a step: one, or two for a duration (its start, and its end)."""
    at, here = step.offset, partial(Happening, step=number, vehicle_id=vehicle.id)
    if step.set is not None:
        capable_signal(vehicle, step.set)
        if signal_map()[step.set].set is None:
            raise ValueError(f"{step.set} is derived from the vehicle's state and cannot be set")
        code, value = step.set, step.value
        return [here(at, did=f"set {code}", change=lambda s, v, t: set_value(s, v, code, value, t))]
    if step.plug is not None:
        if not profile_for(vehicle, seed).has_battery:
            raise ValueError(f"vehicle {vehicle.id} has no traction battery to plug in")
        plugged = step.plug
        return [here(at, did="plug in" if plugged else "unplug", change=partial(_plug, plugged=plugged))]
    if step.trip is not None:
        lat, lon = step.trip.latitude, step.trip.longitude
        return [here(at, did=f"set off to {lat}, {lon}", change=lambda s, v, t: drive_to(s, v, lat, lon, t))]
    if step.offline is not None:
        end = at + _duration(step.offline)
        return [
            here(at, did="go offline", change=partial(_offline, offline=True)),
            here(end, did="back online", change=partial(_offline, offline=False)),
        ]
    assert step.asleep is not None
    end = at + _duration(step.asleep)
    return [
        here(at, did="fall asleep", change=partial(_asleep, asleep=True)),
        here(end, did="wake up", change=partial(_asleep, asleep=False)),
    ]


def _plug(state: VehicleState, vehicle: Vehicle, now: float, *, plugged: bool) -> VehicleState:
    return plug(state, vehicle, plugged, now)


def _offline(state: VehicleState, vehicle: Vehicle, now: float, *, offline: bool) -> VehicleState:
    return go_offline(state, vehicle, offline, now)


def _asleep(state: VehicleState, vehicle: Vehicle, now: float, *, asleep: bool) -> VehicleState:
    return fall_asleep(state, vehicle, asleep, now)


def _located(exc: ValidationError) -> str:
    """The first problem, located: `step N: key: what` (steps counted from 1), or the top-level key."""
    error = exc.errors(include_url=False)[0]
    loc, message = list(error["loc"]), error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = f"unknown key {str(loc.pop())!r}"
    prefix = ""
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
        prefix, loc = f"step {loc[1] + 1}: ", loc[2:]
    where = ".".join(str(part) for part in loc)
    return f"{prefix}{where}: {message}" if where else f"{prefix}{message}"
