"""Powertrains: what a vehicle physically is, which decides what it can physically have."""

from __future__ import annotations

from enum import StrEnum


class Powertrain(StrEnum):
    ICE = "ICE"
    HEV = "HEV"
    PHEV = "PHEV"
    BEV = "BEV"
    # About 1 % of vehicles report no powertrain; nothing can be ruled out physically for them.
    UNKNOWN = "UNKNOWN"


PHYSICAL_POWERTRAINS: frozenset[Powertrain] = frozenset(
    {Powertrain.ICE, Powertrain.HEV, Powertrain.PHEV, Powertrain.BEV}
)
