"""A vehicle as the gatekeeper sees it: its powertrain and the signals and commands it supports."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints, model_validator
from pydantic.dataclasses import dataclass

from schemas.catalog import get_catalog
from schemas.powertrain import Powertrain

Identifier = Annotated[str, StringConstraints(min_length=1, max_length=128)]
# Vehicle and connection ids become parts of Redis keys and records: a plain, delimiter-free alphabet.
ResourceId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]
# ISO 3779: 17 characters, letters I, O and Q excluded; or one of Smartcar's test-mode VINs, which start with 0SC and
# do not keep that rule (`0SCAUDI037A5ADB1C`).
VIN_PATTERN = r"^(?:[A-HJ-NPR-Z0-9]{17}|0SC[A-Z0-9]{14})$"
Vin = Annotated[str, StringConstraints(pattern=VIN_PATTERN)]


SHARED_CAPABILITIES_MAX = 4096
_SHARED_CAPABILITIES: dict[tuple[Powertrain, frozenset[str]], frozenset[str]] = {}
"""One set per distinct (powertrain, capabilities), shared by the vehicles that have it: a fleet has a few kinds
of vehicles, and the gatekeeper caches every vehicle. One set apiece cost its worker memory and, spread over the
heap, a cache miss per decision (`rule.key in vehicle.capabilities`)."""


# A validated dataclass rather than a BaseModel: decide() reads its attributes on the hot path, and a
# plain slotted attribute reads about three times faster than a BaseModel field.
@dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class Vehicle:
    """A vehicle: its identity, powertrain, and the signals and commands it is capable of."""

    id: ResourceId
    vin: Vin
    make: str
    model: str
    year: Annotated[int, Field(ge=1980, le=2100)]
    powertrain: Powertrain
    capabilities: frozenset[str]
    """The signal codes and command names this vehicle supports."""

    @model_validator(mode="after")
    def _capabilities_exist_and_fit(self) -> Vehicle:
        seen = (self.powertrain, self.capabilities)
        shared = _SHARED_CAPABILITIES.get(seen)
        if shared is None:
            catalog = get_catalog()
            possible = catalog.physically_possible(self.powertrain)
            for key in sorted(self.capabilities - possible):
                catalog.signal_or_command(key)  # a name the catalog does not know raises, with close matches
                raise ValueError(f"a {self.powertrain} vehicle cannot physically have {key!r}")
            if len(_SHARED_CAPABILITIES) >= SHARED_CAPABILITIES_MAX:
                _SHARED_CAPABILITIES.clear()
            shared = _SHARED_CAPABILITIES[seen] = self.capabilities
        object.__setattr__(self, "capabilities", shared)  # frozen: set once, here, to an equal set
        return self

    @classmethod
    def with_defaults(
        cls,
        *,
        id: str,
        vin: str,
        make: str,
        model: str,
        year: int,
        powertrain: Powertrain,
        adds: Iterable[str] = (),
        lacks: Iterable[str] = (),
    ) -> Vehicle:
        """A vehicle whose capabilities follow its powertrain, plus `adds`, minus `lacks`."""
        capabilities = (get_catalog().default_capabilities(powertrain) | frozenset(adds)) - frozenset(lacks)
        return cls(id=id, vin=vin, make=make, model=model, year=year, powertrain=powertrain, capabilities=capabilities)


_VIN_ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"


def placeholder_vin(vehicle_id: str) -> str:
    """A well-formed VIN derived from the id, for vehicles registered without one (tests, simulations)."""
    digest = hashlib.sha256(vehicle_id.encode()).digest()
    return "".join(_VIN_ALPHABET[b % len(_VIN_ALPHABET)] for b in digest[:17])
