"""Playing a scenario (scenario.py) against the deployment's vehicles: checked whole, then its faults written with their
windows, then each state change applied at its simulated time.

How a replay stays deterministic: nothing depends on when the runner happens to act, only on simulated times.
- The scenario's `start` is recorded as the shared simulated clock's origin on a fresh world (no clock yet), so every
  vehicles service and the runner agree on what simulated time it is; a vehicle's life is drawn from (vehicle, seed,
  day), so the same fleet, seed and start give the same vehicle at every simulated instant.
- Faults are written before the first step, each with its window [start + T, end) in simulated time (a `clear`
  ends the window of the faults it clears), so a fault applies from exactly T whenever it was written.
- A state change due at T is applied once the shared clock reaches T, computed by the pure functions with now = T
  (not the clock's reading when it is applied), so it is the same change in every run.
The limit: a request is answered at the simulated instant a vehicles service processes it, so a request sent just
before a state change's T may be answered on either side of it (by the runner's lag times the clock's speed, a few
milliseconds of real time), and the service's answering instant (`retrieved_at`) differs between runs by that lag;
what a vehicle reports is stamped at its last 30-second report (read.py), so a request processed in the same 30 s
window as in another run, and on the same side of every step, gets the same answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from schemas.vehicle import Vehicle
from services.keyspace import Keys
from services.redis_client import Client
from services.registry.store import Registry
from simulator.vehicles import SimClock
from simulator.vehicles.faults import MAX_FAULTS, Fault, FaultSet
from simulator.vehicles.scenario import Happening, Plan, ScenarioError
from simulator.vehicles.store import (
    StateConflictError,
    clock,
    load_faults,
    recorded_clock,
    update_faults,
    update_state,
)

MAX_WAIT_S = 600.0
"""Real seconds the runner waits for a clock recorded by another process to reach the scenario's start."""
TRIES = 5


@dataclass(frozen=True, slots=True)
class Applied:
    """One step's effect as it was applied (or refused by the vehicle's state)."""

    step: int
    vehicle_id: str
    at: float
    did: str
    refused: str | None = None
    fault: dict[str, Any] | None = None

    def json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"step": self.step, "vehicle_id": self.vehicle_id, "simulated_time": _iso(self.at)}
        shown["did"] = self.did
        if self.fault is not None:
            shown["fault"] = self.fault
        if self.refused is not None:
            shown["refused"] = self.refused
        return shown


class ScenarioRun:
    """One play of a plan on the deployment under `keys`; `report` hears of each step's effect as it happens."""

    def __init__(
        self,
        redis: Client,
        keys: Keys,
        plan: Plan,
        *,
        vehicles: dict[str, Vehicle],
        seed: int,
        report: Callable[[Applied], None] | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.plan = plan
        self.vehicles = vehicles
        self.seed = seed
        self.report = report or _ignore
        self.clock: SimClock | None = None
        self.origin = 0.0

    async def prepare(self, speed: float, *, speed_given: bool) -> None:
        """Check the clock and the vehicles' room for faults, then record the clock (if none is) and write the faults;
        ScenarioError before anything is written."""
        recorded = await recorded_clock(self.redis, self.keys)
        if recorded is not None:
            self._check_clock(recorded, speed if speed_given else None)
        for vehicle_id in {f.vehicle_id for f in self.plan.faults}:
            held = len((await load_faults(self.redis, self.keys, vehicle_id))[0].pruned(self._now_or(recorded)).faults)
            if held + sum(f.vehicle_id == vehicle_id for f in self.plan.faults) > MAX_FAULTS:
                raise ScenarioError(f"{self.plan.path}: vehicle {vehicle_id} would hold more than {MAX_FAULTS} faults")
        self.clock = await clock(self.redis, self.keys, speed, self.plan.start)
        self.origin = self.clock.now() if self.plan.start is None else self.plan.start
        for planned in self.plan.faults:
            fault = _shifted(planned.fault, self.origin)
            _, after = await update_faults(self.redis, self.keys, planned.vehicle_id, _adding(fault, self.origin))
            added = after.faults[-1]
            at = fault.start or self.origin
            self.report(Applied(planned.step, planned.vehicle_id, at, f"fault {added.id}", fault=added.shown()))

    async def play(self) -> list[Applied]:
        """Apply each change at its simulated time, in order; what each did (a refusal is reported, not raised)."""
        assert self.clock is not None, "prepare() first"
        done = []
        for happening in self.plan.happenings:
            at = self.origin + happening.offset
            await self._until(at)
            applied = await self._apply(happening, at)
            self.report(applied)
            done.append(applied)
        return done

    def _check_clock(self, recorded: SimClock, speed: float | None) -> None:
        if speed is not None and recorded.speed != speed:
            raise ScenarioError(
                f"{self.plan.path}: the simulated clock runs at {recorded.speed:g}x (recorded by the first vehicles"
                f" service or scenario); --speed {speed:g} cannot change it"
            )
        start = self.plan.start
        if start is not None and not 0 <= (start - recorded.now()) / recorded.speed <= MAX_WAIT_S:
            raise ScenarioError(
                f"{self.plan.path}: the simulated clock is at {_iso(recorded.now())}, too far from the scenario's"
                f" start {_iso(start)}: play it on a fresh world (its own FLEETGATE_KEY_PREFIX), which it records"
            )

    @staticmethod
    def _now_or(recorded: SimClock | None) -> float:
        return datetime.now(UTC).timestamp() if recorded is None else recorded.now()

    async def _until(self, at: float) -> None:
        assert self.clock is not None
        while (ahead := at - self.clock.now()) > 0:
            await asyncio.sleep(ahead / self.clock.speed)

    async def _apply(self, happening: Happening, at: float) -> Applied:
        vehicle_id = happening.vehicle_id
        applied = Applied(happening.step, vehicle_id, at, happening.did)
        if happening.change is None:
            await update_faults(self.redis, self.keys, vehicle_id, lambda f: _ended(f, at))
            return applied
        vehicle, change = self.vehicles[vehicle_id], happening.change
        try:
            await update_state(
                self.redis,
                self.keys,
                vehicle,
                seed=self.seed,
                now=at,
                change=lambda state: change(state, vehicle, at),
                tries=TRIES,
            )
        except ValueError as exc:  # the state model does not allow it now: reported, and the scenario goes on
            return Applied(happening.step, vehicle_id, at, happening.did, refused=str(exc))
        except StateConflictError as exc:
            raise StateConflictError(f"{exc}: step {happening.step} not applied") from None
        return applied


async def registered(registry: Registry, vehicle_ids: Sequence[str]) -> dict[str, Vehicle | None]:
    ids = sorted(set(vehicle_ids))
    return dict(zip(ids, await registry.vehicles_by_id(ids), strict=True))


def _ignore(_applied: Applied) -> None:
    pass


def _adding(fault: Fault, now: float) -> Callable[[FaultSet], FaultSet]:
    return lambda faults: faults.added(fault, now)


def _shifted(fault: Fault, origin: float) -> Fault:
    start = origin + (fault.start or 0.0)
    return fault.model_copy(update={"start": start, "until": None if fault.until is None else origin + fault.until})


def _ended(faults: FaultSet, at: float) -> FaultSet:
    """Without the faults that started by `at` (a scenario's later ones stay)."""
    return FaultSet(tuple(f for f in faults.faults if f.start is not None and f.start > at), faults.numbered).pruned(at)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
