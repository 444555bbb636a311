"""`decide()`: the one place where policy lives. Pure, and cheap enough for the hot path.

Precedence (docs/contract.md, "Outcomes and their precedence"):
REJECTED > UNAUTHORIZED > VEHICLE_NOT_CAPABLE > PERMISSION_DENIED > ALLOWED.
A decision depends on the request only through its target (and, for a REJECTED one, what was wrong), so the
decisions for every known target are built once and shared: deciding is a few lookups and a bit test, with
no allocation. The request id enters only when the error object or the wire message is built (outbound.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from schemas import problems
from schemas.catalog import Catalog, Command, get_catalog
from schemas.connection import Connection, ConnectionStatus
from schemas.messages import RequestFields
from schemas.problems import Outcome, Problem, SmartcarError
from schemas.vehicle import Vehicle


def rfc3339(moment: datetime) -> str:
    """A UTC time as the wire writes it (as pydantic does: `Z`, microseconds only when not zero)."""
    return moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome for a request, the permission its target needs, and what went wrong (None when ALLOWED)."""

    outcome: Outcome
    permission: str | None
    problem: Problem | None
    wire_fragments: tuple[str, str] | None = field(default=None, init=False, repr=False, compare=False)
    """Its part of the wire JSON around the request id, built on first use by schemas/outbound.py."""

    def error(self, request_id: str) -> SmartcarError | None:
        """The Smartcar-shaped error object for the request this decision answers."""
        return None if self.problem is None else self.problem.for_request(request_id)


@dataclass(frozen=True, slots=True)
class _Rule:
    """What decide() needs to know about one target, and its possible decisions, precomputed."""

    key: str
    permission: str
    bit: int
    command: Command | None
    allowed: Decision
    unauthorized: Decision
    not_capable: Decision
    denied: Decision


def _rule(catalog: Catalog, key: str, label: str, permission: str, command: Command | None) -> _Rule:
    return _Rule(
        key=key,
        permission=permission,
        bit=catalog.permission_bit(permission),
        command=command,
        allowed=Decision(Outcome.ALLOWED, permission, None),
        unauthorized=Decision(Outcome.UNAUTHORIZED, permission, problems.UNAUTHORIZED),
        not_capable=Decision(Outcome.VEHICLE_NOT_CAPABLE, permission, problems.not_capable(label)),
        denied=Decision(Outcome.PERMISSION_DENIED, permission, problems.permission_denied(permission, label)),
    )


def _rules(catalog: Catalog) -> tuple[dict[str, _Rule], dict[str, _Rule]]:
    signals = {s.code: _rule(catalog, s.code, f"signal {s.code}", s.permission, None) for s in catalog.signals}
    commands = {c.name: _rule(catalog, c.name, f"command {c.name}", c.permission, c) for c in catalog.commands}
    return signals, commands


_SIGNAL_RULES, _COMMAND_RULES = _rules(get_catalog())
# Enum member access costs a descriptor call in Python 3.11; the hot path reads a module constant.
_ACTIVE = ConnectionStatus.ACTIVE


def decide(request: RequestFields, connection: Connection | None, vehicle: Vehicle | None) -> Decision:
    """Decide one request against the connection and vehicle the registry holds for it.

    `connection` and `vehicle` are None when the registry has none under the request's ids; that, a revoked
    connection, or a connection of another vehicle is UNAUTHORIZED (fail closed). Scopes come from the
    connection only. A vehicle's capability set never holds what its powertrain cannot physically have
    (`Vehicle` validates that), so one membership test covers both reasons for VEHICLE_NOT_CAPABLE.
    """
    rule = (_SIGNAL_RULES if request.kind == "signal" else _COMMAND_RULES).get(request.target)
    if rule is None:
        # A malformed request, not a bad parameter: code null, as Smartcar's VALIDATION errors have it.
        return Decision(Outcome.REJECTED, None, problems.rejected(f"Unknown {request.kind} {request.target!r}."))
    params = request.params
    command = rule.command
    if command is None:
        if params:
            return _rejected(rule.permission, f"Signal {rule.key} takes no parameters.")
    elif command.params or params:
        message = command.params_problem(params)
        if message is not None:
            return _rejected(rule.permission, f"Invalid parameters: {message}.")
    vehicle_id = request.vehicle_id
    if (
        connection is None
        or vehicle is None
        or connection.status is not _ACTIVE
        or connection.id != request.connection_id
        or connection.vehicle_id != vehicle_id
        or vehicle.id != vehicle_id
    ):
        return rule.unauthorized
    if rule.key not in vehicle.capabilities:
        return rule.not_capable
    if not connection.permissions.granted >> rule.bit & 1:
        return rule.denied
    return rule.allowed


def _rejected(permission: str | None, description: str) -> Decision:
    return Decision(Outcome.REJECTED, permission, problems.rejected(description, parameter=True))
