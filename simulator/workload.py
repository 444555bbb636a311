"""The requests a load sends: which vehicle, which target, and which outcome the simulator intends for each.

Most requests read a popular signal of the app's selection (Zipf-ranked in the order of the selection), some
send a command; set shares aim at targets the grant lacks, targets the vehicle cannot do, unknown connections
and malformed payloads. The intended outcome always comes from the World (simulator/world.py).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from schemas.catalog import get_catalog
from simulator.world import SimVehicle, World

Share = Annotated[float, Field(ge=0, le=1)]

MALFORMED = 1
"""The payload is not a valid request: REJECTED."""
FOREIGN_CONNECTION = 2
"""The request names a connection that is not its vehicle's: UNAUTHORIZED."""
UNREADABLE = 4
"""Not JSON at all: its decision's request_id is `unreadable:<entry id>`."""


class WorkloadMix(BaseModel):
    """Shares of each kind of request; what is left reads or commands within the app's selection."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command_share: Share = 0.08
    not_granted_share: Share = 0.04
    """Aimed at a target the vehicle has but the owner did not grant: PERMISSION_DENIED."""
    not_capable_share: Share = 0.04
    """Aimed at a target the vehicle cannot do: VEHICLE_NOT_CAPABLE."""
    unknown_connection_share: Share = 0.01
    malformed_share: Share = 0.01
    """Invalid JSON, unknown targets, wrong types: REJECTED."""
    duplicate_share: Share = 0.01
    """Publishes that repeat an earlier request id: still one decision."""
    popularity_exponent: Annotated[float, Field(ge=0)] = 1.1


@dataclass(frozen=True, slots=True)
class Planned:
    """One request as sent, and what the simulator expects back."""

    request_id: str
    payload: bytes
    vehicle: int
    """Index into World.vehicles."""
    target: str
    flags: int = 0
    """MALFORMED, FOREIGN_CONNECTION, UNREADABLE: what the accountant needs to know to judge the decision."""

    @property
    def unreadable(self) -> bool:
        return bool(self.flags & UNREADABLE)


class RequestMaker:
    """Draws the load test's requests from the world (valid ones, and malformed or foreign ones on purpose)."""

    def __init__(self, world: World, mix: WorkloadMix, seed: int, id_prefix: str) -> None:
        self.world = world
        self.mix = mix
        self.rng = random.Random(seed)
        self.id_prefix = id_prefix
        self._count = 0
        catalog = get_catalog()
        self._targets = [s.code for s in catalog.signals] + [c.name for c in catalog.commands]
        self._kinds = {s.code: "signal" for s in catalog.signals} | {c.name: "command" for c in catalog.commands}
        self._params = {c.name: c.example_params for c in catalog.commands}
        self._permission = {t: catalog.signal_or_command(t).permission for t in self._targets}
        self._connected = [i for i, v in enumerate(world.vehicles) if v.connection_id is not None]
        if not self._connected:
            raise ValueError("no vehicle has a connection: nothing to send requests for")
        weights = [1 / rank**mix.popularity_exponent for rank in range(1, len(world.selected_signals) + 1)]
        self._signal_weights = weights
        edges, total = [], 0.0
        for share in (
            mix.malformed_share,
            mix.unknown_connection_share,
            mix.not_capable_share,
            mix.not_granted_share,
            mix.command_share,
        ):
            total += share
            edges.append(total)
        if total > 1:
            raise ValueError(f"the workload shares add up to {total:.2f}, more than 1")
        self._edges = edges

    def make(self, issued_at: str) -> Planned:
        """The next request, issued at `issued_at` (RFC 3339)."""
        self._count += 1
        request_id = f"{self.id_prefix}{self._count}"
        index = self.rng.choice(self._connected)
        vehicle = self.world.vehicles[index]
        assert vehicle.connection_id is not None
        connection_id = vehicle.connection_id
        roll = self.rng.random()
        malformed, unknown, not_capable, not_granted, command = self._edges
        if roll < malformed:
            return self._malformed(request_id, index, vehicle, issued_at)
        if roll < unknown:
            connection_id = f"c-unknown-{self.rng.getrandbits(48):012x}"
            target = self._popular_signal()
        elif roll < not_capable:
            target = self._pick(lambda t: t not in self.world.profiles[vehicle.profile]) or self._popular_signal()
        elif roll < not_granted:
            target = self._pick(lambda t: self._lacks_grant(vehicle, t)) or self._popular_signal()
        elif roll < command and self.world.selected_commands:
            target = self.rng.choice(self.world.selected_commands)
        else:
            target = self._popular_signal()
        body: dict[str, object] = {
            "v": 1,
            "request_id": request_id,
            "connection_id": connection_id,
            "vehicle_id": vehicle.id,
            "kind": self._kinds[target],
            "target": target,
            "issued_at": issued_at,
        }
        if self._kinds[target] == "command" and self._params[target]:
            body["params"] = self._params[target]
        flags = FOREIGN_CONNECTION if connection_id != vehicle.connection_id else 0
        return Planned(request_id, _encode(body), index, target, flags)

    def _malformed(self, request_id: str, index: int, vehicle: SimVehicle, issued_at: str) -> Planned:
        body: dict[str, object] = {
            "v": 1,
            "request_id": request_id,
            "connection_id": vehicle.connection_id,
            "vehicle_id": vehicle.id,
            "kind": "signal",
            "target": self._popular_signal(),
            "issued_at": issued_at,
        }
        flavour = self.rng.randrange(4)
        if flavour == 0:  # truncated JSON: nothing in it can be read, not even the request id
            return Planned(request_id, _encode(body)[:40], index, "(invalid JSON)", MALFORMED | UNREADABLE)
        if flavour == 1:
            body["target"] = f"{body['target']}e"  # a typo: not in the catalog
        elif flavour == 2:
            body["issued_at"] = 1764331200  # epoch seconds: the contract wants RFC 3339 text
        else:
            del body["target"]
        target = str(body.get("target", "(missing target)"))
        return Planned(request_id, _encode(body), index, target, MALFORMED)

    def _popular_signal(self) -> str:
        return self.rng.choices(self.world.selected_signals, self._signal_weights)[0]

    def _pick(self, wanted: Callable[[str], bool]) -> str | None:
        """A random catalog target passing `wanted`, or None after a few tries (some vehicles have none)."""
        for _ in range(8):
            target = self.rng.choice(self._targets)
            if wanted(target):
                return target
        return None

    def _lacks_grant(self, vehicle: SimVehicle, target: str) -> bool:
        granted = vehicle.grant.permissions if vehicle.grant else frozenset()
        return target in self.world.profiles[vehicle.profile] and self._permission[target] not in granted


def _encode(body: dict[str, object]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()
