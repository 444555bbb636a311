"""One ALLOWED decision answered by the simulated vehicle: the response message, and the state it leaves.

Pure: the vehicles service (service.py) brings the decision, the vehicle's registry record, its state and faults and
the simulated time, and writes what comes back. The vehicle's faults (faults.py) are applied first: an injected error
answers instead of the state model (a command is then not run; a signal's error keeps the last value the vehicle
reported, where the model has one), and an injected delay is the service's to serve.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from schemas import problems
from schemas.outbound import encode_response
from schemas.vehicle import Vehicle
from simulator.vehicles import SignalReading, VehicleProblem, VehicleState, advance, execute, read_signal
from simulator.vehicles.faults import FaultSet, Injection, inject
from simulator.vehicles.read import read_advanced

REPLAY_LIMIT_S = 3600.0
"""A read stores the state it advanced when the stored one is older than this (simulated seconds), so that later
answers do not replay the same hours again; more often would make every read a write."""


@dataclass(frozen=True, slots=True)
class Answer:
    response: bytes
    state: VehicleState | None
    """The state to store: after a command (it woke the vehicle, whatever it answered), or a read that advanced
    the stored state by more than REPLAY_LIMIT_S; None when nothing needs storing."""
    latest: VehicleState | None
    """The state as of this answer (stored or not): the service keeps it in memory, so that the next answer for
    the vehicle does not replay the same simulated time again."""
    code: str
    """SUCCESS, or the error's code (for metrics): ASLEEP, DOOR_OPEN, ..."""
    faults: FaultSet | None = None
    """The vehicle's faults after this request counted against a `next` fault (written with it); None: unchanged."""
    delay_ms: int = 0
    """An injected delay: the response is to be written no earlier than this after the answer."""


def answer(
    decision: dict[str, Any],
    vehicle: Vehicle | None,
    state: VehicleState | None,
    now: float,
    response_id: str,
    *,
    refuse_asleep: bool = False,
    faults: FaultSet | None = None,
) -> Answer:
    """The vehicle's answer to an ALLOWED decision, at simulated time `now` (unix seconds).

    A read of an asleep vehicle answers the value it last reported (its `oemUpdatedAt` says how old), as most
    manufacturers' clouds do; with `refuse_asleep` it is VEHICLE_STATE/ASLEEP with that stale value, as Smartcar
    answers for the vehicles that must be woken to read (parked vehicles are asleep most of the day).
    Raises ValueError for a target the vehicle is not capable of (the gatekeeper has refused those already).
    """
    target = str(decision["target"])
    if vehicle is None or state is None:  # registered when decided, gone since: the vehicle cannot be reached
        problem = problems.UPSTREAM_PROBLEMS["NO_RESPONSE"]
        return Answer(_message(decision, response_id, now, problem=problem), None, None, "NO_RESPONSE")
    injected = inject(faults or FaultSet(), target, str(decision["request_id"]), now, state.seed)
    if injected.error is not None:
        found = _injected(decision, vehicle, state, now, response_id, injected)
    else:
        found = _modelled(decision, vehicle, state, now, response_id, refuse_asleep=refuse_asleep)
    return replace(found, faults=injected.faults, delay_ms=injected.delay_ms)


def _modelled(
    decision: dict[str, Any],
    vehicle: Vehicle,
    state: VehicleState,
    now: float,
    response_id: str,
    *,
    refuse_asleep: bool,
) -> Answer:
    """What the state model answers."""
    target = str(decision["target"])
    if decision["kind"] == "signal":
        advanced = advance(state, vehicle, now, state.seed)
        store = advanced if advanced.at - state.at > REPLAY_LIMIT_S else None
        reading = read_advanced(advanced, vehicle, target)  # advanced already: not again
        if isinstance(reading, VehicleProblem):
            if reading.code == "ASLEEP" and not refuse_asleep and reading.stale is not None:
                message = _message(decision, response_id, now, reading=reading.stale)
                return Answer(message, store, advanced, "SUCCESS")
            message = _message(decision, response_id, now, reading=reading.stale, problem=reading.problem)
            return Answer(message, store, advanced, reading.code)
        return Answer(_message(decision, response_id, now, reading=reading), store, advanced, "SUCCESS")
    changed, result = execute(state, vehicle, target, decision.get("params"), now)
    if isinstance(result, VehicleProblem):  # the attempt woke the vehicle all the same: its state is kept
        return Answer(_message(decision, response_id, now, problem=result.problem), changed, changed, result.code)
    return Answer(_message(decision, response_id, now), changed, changed, "SUCCESS")


def _injected(  # noqa: PLR0917  # a private helper of answer(), called with its own arguments in order
    decision: dict[str, Any],
    vehicle: Vehicle,
    state: VehicleState,
    now: float,
    response_id: str,
    injected: Injection,
) -> Answer:
    """The injected error; for a signal, with the last value the vehicle reported (as a refusal by its state has)."""
    assert injected.problem is not None
    stale = None
    if decision["kind"] == "signal":
        reading = read_signal(state, vehicle, str(decision["target"]), now)
        stale = reading if isinstance(reading, SignalReading) else reading.stale
    message = _message(
        decision, response_id, now, reading=stale, problem=injected.problem, retry_after_s=injected.retry_after_s
    )
    return Answer(message, None, None, injected.problem.code or injected.problem.type)


def _message(
    decision: dict[str, Any],
    response_id: str,
    now: float,
    *,
    reading: SignalReading | None = None,
    problem: problems.Problem | None = None,
    retry_after_s: int | None = None,
) -> bytes:
    request_id = str(decision["request_id"])
    return encode_response(  # schemas/outbound.py: the model's JSON without building the model
        response_id=response_id,
        request_id=request_id,
        decision_id=str(decision["decision_id"]),
        connection_id=str(decision["connection_id"]),
        vehicle_id=str(decision["vehicle_id"]),
        kind=decision["kind"],
        target=str(decision["target"]),
        body=None if reading is None else reading.body,
        oem_updated_at=None if reading is None else _at(reading.oem_updated_at),
        retrieved_at=_at(now),
        problem=problem,
        retry_after_s=retry_after_s,
        responded_at=datetime.now(UTC),
    )


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
