"""Command effects the load test checks in the vehicles' answers: after a SUCCESSful command on a vehicle, a later
read of the signal it sets says what it set (the rules are data: simulator/effects.toml).

A read is judged against the last successful rule command before it on the responses stream (one vehicle's
answers are in order there) when it was issued after that command's response was written, and when the vehicle
reported the value at the command's own moment (its `oem_updated_at` is the command's `retrieved_at`). A value
reported later is not judged: meanwhile the vehicle's own life may have changed it (it locks itself as it drives
off, its driver locks it on arriving), which the load test does not predict. A refused command changes nothing.
"""

from __future__ import annotations

import tomllib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from schemas.catalog import get_catalog
from simulator.errors import SimulatorError


class Effect(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    command: str
    signal: str
    value: bool | int | float | str
    """What the read's body `value` must be."""


class _EffectsFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    effects: tuple[Effect, ...]


@dataclass(frozen=True)
class EffectRules:
    by_command: dict[str, tuple[Effect, ...]]
    signals: frozenset[str]

    @classmethod
    def of(cls, effects: tuple[Effect, ...]) -> EffectRules:
        """Rules naming only the catalog's commands and signals (SimulatorError otherwise)."""
        catalog = get_catalog()
        by_command: dict[str, list[Effect]] = defaultdict(list)
        for effect in effects:
            try:
                catalog.command(effect.command)
                catalog.signal(effect.signal)
            except ValueError as exc:
                raise SimulatorError(f"effects.toml: {exc}") from exc
            by_command[effect.command].append(effect)
        return cls({c: tuple(e) for c, e in by_command.items()}, frozenset(e.signal for e in effects))


@cache
def default_rules() -> EffectRules:
    text = resources.files("simulator").joinpath("effects.toml").read_text()
    try:
        return EffectRules.of(_EffectsFile.model_validate(tomllib.loads(text)).effects)
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise SimulatorError(f"effects.toml: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Observed:
    """One first response that a rule concerns, as read."""

    request_id: str
    target: str
    success: bool
    body: Any
    retrieved_at: str
    oem_updated_at: str | None
    responded_at: str

    @classmethod
    def of(cls, response: dict[str, Any]) -> Observed:
        return cls(
            request_id=str(response.get("request_id")),
            target=str(response.get("target")),
            success=response.get("status") == "SUCCESS",
            body=response.get("body"),
            retrieved_at=str(response.get("retrieved_at")),
            oem_updated_at=response.get("oem_updated_at"),
            responded_at=str(response.get("responded_at")),
        )


@dataclass(frozen=True, slots=True)
class Violation:
    read: Observed
    command: Observed
    expected: Any
    vehicle_id: str


@dataclass(frozen=True, slots=True)
class EffectsChecked:
    checked: int
    violations: list[Violation]


class EffectChecker:
    """Collects the responses the rules concern, per vehicle in stream order; judges them once all are in."""

    def __init__(self, rules: EffectRules) -> None:
        self.rules = rules
        self._by_vehicle: dict[str, list[Observed]] = defaultdict(list)

    def observe(self, response: dict[str, Any]) -> None:
        """A first response, in the order of its shard's stream."""
        target = response.get("target")
        if target in self.rules.by_command or target in self.rules.signals:
            self._by_vehicle[str(response.get("vehicle_id"))].append(Observed.of(response))

    def check(self, issued_at: Callable[[str], float | None]) -> EffectsChecked:
        """Judge every read that follows a successful command; `issued_at` gives a request's epoch seconds."""
        checked = 0
        violations: list[Violation] = []
        for vehicle_id, observed in self._by_vehicle.items():
            last: dict[str, tuple[Observed, Effect]] = {}
            for item in observed:
                if item.target in self.rules.by_command:
                    if item.success:
                        last.update((e.signal, (item, e)) for e in self.rules.by_command[item.target])
                    continue
                before = last.get(item.target)
                if before is None or not _judged(item, before[0], issued_at(item.request_id)):
                    continue
                checked += 1
                if item.body.get("value") != before[1].value:
                    violations.append(Violation(item, before[0], before[1].value, vehicle_id))
        return EffectsChecked(checked, violations)


def _judged(read: Observed, command: Observed, issued: float | None) -> bool:
    if not read.success or not isinstance(read.body, dict) or read.oem_updated_at is None or issued is None:
        return False
    try:
        written = _at(command.responded_at).timestamp()
        return issued >= written and _at(read.oem_updated_at) == _at(command.retrieved_at)
    except ValueError:  # not RFC 3339: nothing to judge by (the contract tests catch such a response)
        return False


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)
