"""`decide()`: the one place where policy lives. Pure, and cheap enough for the hot path.

Precedence (DESIGN.md): REJECTED > UNAUTHORIZED > VEHICLE_NOT_CAPABLE > PERMISSION_DENIED > ALLOWED.
Everything that depends only on the target (its permission bit, its powertrains, its error objects) is
computed once per catalog entry, so a decision is a few dict lookups and bit tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

from schemas import problems
from schemas.catalog import Command, get_catalog
from schemas.connection import Connection, ConnectionStatus
from schemas.messages import DecisionMessage, RequestMessage
from schemas.powertrain import Powertrain
from schemas.problems import Outcome, Problem, SmartcarError
from schemas.vehicle import Vehicle


class Decision:
    """The outcome for one request; `error` is the Smartcar-shaped error object (None when ALLOWED)."""

    __slots__ = ("outcome", "permission", "problem", "request_id")

    def __init__(self, request_id: str, outcome: Outcome, permission: str | None, problem: Problem | None) -> None:
        self.request_id = request_id
        self.outcome = outcome
        self.permission = permission
        self.problem = problem

    @property
    def error(self) -> SmartcarError | None:
        # Built on demand: most consumers of a Decision only need the outcome.
        return None if self.problem is None else self.problem.for_request(self.request_id)

    def to_message(
        self, request: RequestMessage, decision_id: str, decided_at: datetime, entry_id: str | None = None
    ) -> DecisionMessage:
        """The decision as published on `{prefix}:decisions`."""
        return DecisionMessage(
            decision_id=decision_id,
            request_id=request.request_id,
            connection_id=request.connection_id,
            vehicle_id=request.vehicle_id,
            kind=request.kind,
            target=request.target,
            outcome=self.outcome,
            permission=self.permission,
            error=self.error,
            decided_at=decided_at,
            entry_id=entry_id,
        )

    def __repr__(self) -> str:
        return f"Decision({self.request_id!r}, {self.outcome}, permission={self.permission!r})"


@dataclass(frozen=True, slots=True)
class _Rule:
    """What decide() needs to know about one target, precomputed."""

    key: str
    permission: str
    bit: int
    powertrains: frozenset[Powertrain]
    command: Command | None
    not_capable: Problem
    denied: Problem


@cache
def _rules() -> tuple[dict[str, _Rule], dict[str, _Rule]]:
    catalog = get_catalog()

    def rule(key: str, label: str, permission: str, powertrains: frozenset[Powertrain], command: Command | None) -> _Rule:
        return _Rule(
            key=key,
            permission=permission,
            bit=catalog.permission_bit(permission),
            # Nothing can be ruled out physically for an UNKNOWN powertrain: its capability set decides.
            powertrains=powertrains | {Powertrain.UNKNOWN},
            command=command,
            not_capable=problems.not_capable(label),
            denied=problems.permission_denied(permission, label),
        )

    signals = {s.code: rule(s.code, f"signal {s.code}", s.permission, s.powertrains, None) for s in catalog.signals}
    commands = {c.name: rule(c.name, f"command {c.name}", c.permission, c.powertrains, c) for c in catalog.commands}
    return signals, commands


def decide(request: RequestMessage, connection: Connection | None, vehicle: Vehicle | None) -> Decision:
    """Decide one request against the connection and vehicle the registry holds for it.

    `connection` and `vehicle` are None when the registry has none under the request's ids; that, a revoked
    connection, or a connection of another vehicle is UNAUTHORIZED (fail closed). Scopes come from the
    connection only.
    """
    request_id = request.request_id
    signals, commands = _rules()
    rule = (signals if request.kind == "signal" else commands).get(request.target)
    if rule is None:
        problem = problems.rejected(f"Unknown {request.kind} {request.target!r}.", parameter=True)
        return Decision(request_id, Outcome.REJECTED, None, problem)
    if rule.command is None:
        if request.params:
            problem = problems.rejected(f"Signal {rule.key} takes no parameters.", parameter=True)
            return Decision(request_id, Outcome.REJECTED, rule.permission, problem)
    elif rule.command.params or request.params:
        message = rule.command.params_problem(request.params)
        if message is not None:
            problem = problems.rejected(f"Invalid parameters: {message}.", parameter=True)
            return Decision(request_id, Outcome.REJECTED, rule.permission, problem)
    if (
        connection is None
        or vehicle is None
        or connection.status is not ConnectionStatus.ACTIVE
        or connection.id != request.connection_id
        or connection.vehicle_id != request.vehicle_id
        or vehicle.id != request.vehicle_id
    ):
        return Decision(request_id, Outcome.UNAUTHORIZED, rule.permission, problems.UNAUTHORIZED)
    if vehicle.powertrain not in rule.powertrains or rule.key not in vehicle.capabilities:
        return Decision(request_id, Outcome.VEHICLE_NOT_CAPABLE, rule.permission, rule.not_capable)
    if not connection.permissions.granted >> rule.bit & 1:
        return Decision(request_id, Outcome.PERMISSION_DENIED, rule.permission, rule.denied)
    return Decision(request_id, Outcome.ALLOWED, rule.permission, None)
