"""Injected faults: errors and delays a simulated vehicle answers with on demand, decided per request, never by chance.

A fault belongs to one vehicle and applies to one of its targets (a signal code or command name) or, without a
target, to all of them, within an optional window of simulated time [start, until). It injects an error (Smartcar's
TYPE/CODE: any VEHICLE_STATE or UPSTREAM code, or RATE_LIMIT/VEHICLE, whose response carries retry_after_s), a delay
before the response is written, or both. It fires

- `always`;
- with a `probability` p: request r fires fault f under seed s when draw(r, f, s) < p, where draw is the first 8 bytes
  of BLAKE2b(f"{s}:{f}:{r}") as a big-endian integer divided by 2**64 (never `random`: a request always draws the same);
- on the `next` N requests it applies to: each firing counts one, and the fault goes when none are left.

Faults are checked in the order they were added: the answer takes the first firing fault's error and the longest
firing delay, and every firing `next` fault counts one. A vehicle holds at most MAX_FAULTS; spent ones (past their
`until`, or with no requests left) are dropped whenever the set is written. The set is stored with the vehicle's state
and written under the same version check (store.py), so that counting one of the next N and answering the request
are one step (respond.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.catalog import get_catalog
from schemas.problems import RATE_LIMIT_PROBLEMS, UPSTREAM_PROBLEMS, VEHICLE_STATE_PROBLEMS, Problem
from schemas.vehicle import Vehicle

Mode = Literal["always", "probability", "next"]
PROBLEMS: dict[str, dict[str, Problem]] = {
    "VEHICLE_STATE": VEHICLE_STATE_PROBLEMS,
    "UPSTREAM": UPSTREAM_PROBLEMS,
    "RATE_LIMIT": RATE_LIMIT_PROBLEMS,
}
"""The errors a fault can inject, by Smartcar error type."""
RATE_LIMITED = "RATE_LIMIT/VEHICLE"
MAX_FAULTS = 16
"""Faults one vehicle holds at most (its state hash stays small; a request checks each)."""
MAX_DELAY_MS = 300_000
DEFAULT_RETRY_AFTER_S = 60
"""retry_after_s of a RATE_LIMIT/VEHICLE fault that does not say."""


def error_name(text: str) -> str:
    """The canonical TYPE/CODE of an injectable error, from TYPE/CODE or a bare code (VEHICLE: RATE_LIMIT/VEHICLE).

    Raises ValueError (one line) for an unknown or ambiguous name: RATE_LIMIT is both an UPSTREAM code and a type.
    """
    wanted = text.strip().upper()
    every = [f"{kind}/{code}" for kind, table in PROBLEMS.items() for code in table]
    if "/" in wanted:
        found = [name for name in every if name == wanted]
    else:
        found = [name for name in every if name.split("/")[1] == wanted]
        if wanted in PROBLEMS and len(PROBLEMS[wanted]) == 1:
            found.append(f"{wanted}/{next(iter(PROBLEMS[wanted]))}")
    if len(found) == 1:
        return found[0]
    if found:
        raise ValueError(f"error {text!r} is ambiguous: say {' or '.join(found)}")
    raise ValueError(f"unknown error {text!r}; known: {', '.join(every)}")


def problem_of(name: str) -> Problem:
    """Smartcar's error object for a canonical TYPE/CODE."""
    kind, code = name.split("/")
    return PROBLEMS[kind][code]


def check_target(vehicle: Vehicle, target: str) -> None:
    """Raise ValueError (one line) unless `target` is a signal or command of the catalog that the vehicle has."""
    get_catalog().signal_or_command(target)  # UnknownNameError, a ValueError suggesting close names
    if target not in vehicle.capabilities:
        raise ValueError(f"vehicle {vehicle.id} is not capable of {target}")


def draw(request_id: str, fault_id: str, seed: int) -> float:
    """The request's number in [0, 1) for this fault (a `probability` fault fires below its probability)."""
    digest = hashlib.blake2b(f"{seed}:{fault_id}:{request_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class Fault(BaseModel):
    """One injected fault (see the module docstring); `id` is given when it is added to a vehicle (f1, f2, ...)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = ""
    target: str | None = None
    """A signal code or command name; None: every target of the vehicle."""
    error: str | None = None
    """TYPE/CODE (a bare code is accepted and made canonical)."""
    retry_after_s: int | None = Field(default=None, ge=1, le=86_400)
    delay_ms: int = Field(default=0, ge=0, le=MAX_DELAY_MS)
    mode: Mode = "always"
    probability: float | None = Field(default=None, ge=0, le=1)
    remaining: int | None = Field(default=None, ge=1)
    """For `next`: requests left to fire on."""
    start: float | None = None
    """Simulated unix seconds from which it applies (None: from when it is added)."""
    until: float | None = None
    """Simulated unix seconds from which it no longer applies (None: until cleared)."""

    @field_validator("error")
    @classmethod
    def _canonical(cls, value: str | None) -> str | None:
        return None if value is None else error_name(value)

    @model_validator(mode="before")
    @classmethod
    def _default_retry_after(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("retry_after_s") is None and data.get("error") is not None:
            try:
                if error_name(str(data["error"])) == RATE_LIMITED:
                    return {**data, "retry_after_s": DEFAULT_RETRY_AFTER_S}
            except ValueError:
                pass  # reported by the field's own validator
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Fault:
        if self.error is None and self.delay_ms == 0:
            raise ValueError("a fault needs an error, a delay (delay_ms above 0) or both")
        if (self.mode == "probability") != (self.probability is not None):
            raise ValueError("a probability goes with mode 'probability', and that mode needs one")
        if (self.mode == "next") != (self.remaining is not None):
            raise ValueError("a count of requests (next N) goes with mode 'next', and that mode needs one")
        if self.retry_after_s is not None and self.error != RATE_LIMITED:
            raise ValueError(f"retry_after_s goes with {RATE_LIMITED} only")
        if self.start is not None and self.until is not None and self.until <= self.start:
            raise ValueError("a fault's window must end after it starts")
        return self

    def applies(self, target: str, now: float) -> bool:
        in_window = (self.start is None or self.start <= now) and (self.until is None or now < self.until)
        return in_window and (self.target is None or self.target == target)

    def fires(self, request_id: str, seed: int) -> bool:
        if self.mode == "probability":
            return draw(request_id, self.id, seed) < (self.probability or 0.0)
        return True

    def spent(self, now: float) -> bool:
        return (self.until is not None and self.until <= now) or self.remaining == 0

    def shown(self) -> dict[str, Any]:
        """As `fleetgate vehicles faults` shows it: what is set, the window in RFC 3339."""
        shown = self.model_dump(exclude_none=True)
        for name in ("start", "until"):
            if name in shown:
                moment = datetime.fromtimestamp(shown[name], UTC).isoformat(timespec="milliseconds")
                shown[name] = moment.replace("+00:00", "Z")
        return shown


@dataclass(frozen=True, slots=True)
class FaultSet:
    """A vehicle's faults, in the order they were added, and how many it was ever given (ids are not reused)."""

    faults: tuple[Fault, ...] = ()
    numbered: int = 0

    def encode(self) -> bytes:
        faults = [fault.model_dump(exclude_defaults=True) for fault in self.faults]
        return json.dumps({"n": self.numbered, "faults": faults}, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes | str | None) -> FaultSet:
        """The set encode() wrote (None: a vehicle without faults); ValueError if it is not one."""
        if data is None:
            return cls()
        try:
            raw = json.loads(data)
            return cls(tuple(Fault.model_validate(f) for f in raw["faults"]), int(raw["n"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not an encoded fault set: {exc}") from exc

    def added(self, fault: Fault, now: float) -> FaultSet:
        """With `fault` added as f{n}; ValueError when the vehicle holds MAX_FAULTS live faults already."""
        kept = self.pruned(now).faults
        if len(kept) >= MAX_FAULTS:
            raise ValueError(f"a vehicle holds at most {MAX_FAULTS} faults; clear some first")
        number = self.numbered + 1
        return FaultSet((*kept, fault.model_copy(update={"id": f"f{number}"})), number)

    def cleared(self, ids: Collection[str] | None, now: float) -> FaultSet:
        """Without the faults `ids` (None: all); ValueError naming an id the set does not hold."""
        unknown = sorted(set(ids or ()) - {fault.id for fault in self.faults})
        if unknown:
            held = ", ".join(fault.id for fault in self.faults) or "none"
            raise ValueError(f"no fault {', '.join(unknown)} on this vehicle (it has: {held})")
        kept = () if ids is None else tuple(fault for fault in self.faults if fault.id not in ids)
        return replace(self, faults=kept).pruned(now)

    def pruned(self, now: float) -> FaultSet:
        return replace(self, faults=tuple(fault for fault in self.faults if not fault.spent(now)))


@dataclass(frozen=True, slots=True)
class Injection:
    """What a vehicle's faults do to one request."""

    error: str | None = None
    """TYPE/CODE of the injected error; None: the state model answers."""
    retry_after_s: int | None = None
    delay_ms: int = 0
    faults: FaultSet | None = None
    """The set after a `next` fault counted this request (to be written with the answer); None: unchanged."""

    @property
    def problem(self) -> Problem | None:
        return None if self.error is None else problem_of(self.error)


def inject(faults: FaultSet, target: str, request_id: str, now: float, seed: int) -> Injection:
    """The faults that fire on this request at simulated time `now`, combined (see the module docstring)."""
    fired = [f for f in faults.faults if f.applies(target, now) and f.fires(request_id, seed)]
    if not fired:
        return Injection()
    first = next((f for f in fired if f.error is not None), None)
    counted = {f.id for f in fired if f.mode == "next"}
    after = None
    if counted:
        spent = tuple(
            f.model_copy(update={"remaining": (f.remaining or 1) - 1}) if f.id in counted else f for f in faults.faults
        )
        after = replace(faults, faults=spent).pruned(now)
    return Injection(
        error=None if first is None else first.error,
        retry_after_s=None if first is None else first.retry_after_s,
        delay_ms=max(f.delay_ms for f in fired),
        faults=after,
    )
