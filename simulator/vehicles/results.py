"""What a vehicle answers: a signal's value, a command's outcome, or Smartcar's VEHICLE_STATE/UPSTREAM error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from schemas.problems import UPSTREAM_PROBLEMS, VEHICLE_STATE_PROBLEMS, Problem

ProblemType = Literal["VEHICLE_STATE", "UPSTREAM"]


class SignalReading(NamedTuple):  # NamedTuples: made at every answer, twice as fast to build as frozen dataclasses
    body: dict[str, Any]
    """The signal's Smartcar v3 body (JSON-ready), in the catalog's shape and unit."""
    oem_updated_at: float
    """Simulated unix seconds at which the vehicle last reported this value (Smartcar's `oemUpdatedAt`)."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    status: str
    """Smartcar's command status: "SUCCESS" (a refusal is a VehicleProblem instead)."""
    effect: str
    """What the command did, in a few words ("doors locked")."""


class VehicleProblem(NamedTuple):
    """The vehicle refused: Smartcar's error type and code (see `problem` for its strings)."""

    type: ProblemType
    code: str
    stale: SignalReading | None = None
    """For a read the state refused: the last value the vehicle reported, as Smartcar keeps it, if there is one."""

    @property
    def problem(self) -> Problem:
        """Smartcar's error object for it (description, statusCode, resolution, suggestedUserMessage)."""
        table = VEHICLE_STATE_PROBLEMS if self.type == "VEHICLE_STATE" else UPSTREAM_PROBLEMS
        return table[self.code]


def vehicle_state(code: str, stale: SignalReading | None = None) -> VehicleProblem:
    if code not in VEHICLE_STATE_PROBLEMS:
        raise ValueError(f"unknown VEHICLE_STATE code {code!r}")
    return VehicleProblem("VEHICLE_STATE", code, stale)


def upstream(code: str) -> VehicleProblem:
    """An UPSTREAM problem (the vehicles service injects these: the state model never fails upstream)."""
    if code not in UPSTREAM_PROBLEMS:
        raise ValueError(f"unknown UPSTREAM code {code!r}")
    return VehicleProblem("UPSTREAM", code)


def done(effect: str) -> CommandResult:
    return CommandResult("SUCCESS", effect)
