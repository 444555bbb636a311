"""The Connect grant screen and Connection Filters: what an owner can grant, and which vehicles may connect."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from schemas.catalog import get_catalog
from schemas.errors import AccessDeniedError, VehicleIncompatibleError
from schemas.permissions import PermissionSet
from schemas.powertrain import Powertrain


def grant(requested: PermissionSet, unchecked: Iterable[str] = ()) -> PermissionSet:
    """The permissions granted when the owner unchecks `unchecked` on the screen showing `requested`.

    Required permissions are locked and cannot be unchecked; at least one permission must remain.
    Unchecking a permission that was not requested is an error too: it is not on the screen.
    """
    catalog = get_catalog()
    removed = 0
    for name in unchecked:
        bit = 1 << catalog.permission_bit(name)
        if not requested.granted & bit:
            raise AccessDeniedError(f"{name!r} was not requested, so it cannot be unchecked")
        if requested.required & bit:
            raise AccessDeniedError(f"{name!r} is required: the grant screen locks it")
        removed |= bit
    granted = requested.granted & ~removed
    if not granted:
        raise AccessDeniedError("at least one permission must remain selected")
    return PermissionSet(granted, requested.required)


class FilterPowertrain(StrEnum):
    """The powertrain choices of Connection Filters; ICE covers hybrids (HEV) too."""

    ICE = "ICE"
    BEV = "BEV"
    PHEV = "PHEV"


_COVERS: dict[FilterPowertrain, frozenset[Powertrain]] = {
    FilterPowertrain.ICE: frozenset({Powertrain.ICE, Powertrain.HEV}),
    FilterPowertrain.BEV: frozenset({Powertrain.BEV}),
    FilterPowertrain.PHEV: frozenset({Powertrain.PHEV}),
}


class ConnectionFilters(BaseModel):
    """Which vehicles may connect at all. No powertrain selected means no powertrain filter."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    powertrains: frozenset[FilterPowertrain] = frozenset()
    allow_unknown: bool = True
    """Whether a vehicle reporting an UNKNOWN powertrain (about 1 %) may connect."""

    def admits(self, powertrain: Powertrain) -> bool:
        if powertrain is Powertrain.UNKNOWN:
            return self.allow_unknown
        return not self.powertrains or any(powertrain in _COVERS[p] for p in self.powertrains)

    def check(self, powertrain: Powertrain) -> None:
        """Raise Connect's `vehicle_incompatible` unless the filters admit the powertrain."""
        if not self.admits(powertrain):
            allowed = ", ".join(sorted(self.powertrains)) or "any known powertrain"
            raise VehicleIncompatibleError(
                f"the connection filters admit {allowed}"
                f"{' and UNKNOWN' if self.allow_unknown else ''}, not a vehicle whose powertrain is {powertrain}"
            )
