"""The Vehicle model: vehicles alike share one capability set, and every set is still checked for its powertrain."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas import vehicle as vehicle_module
from schemas.catalog import get_catalog
from schemas.powertrain import Powertrain
from schemas.vehicle import Vehicle, placeholder_vin

FUEL = "internalcombustionengine-fuellevel"


def make(vehicle_id: str, powertrain: Powertrain, **changes: list[str]) -> Vehicle:
    vin = placeholder_vin(vehicle_id)
    return Vehicle.with_defaults(
        id=vehicle_id, vin=vin, make="Make", model="Model", year=2024, powertrain=powertrain, **changes
    )


def test_vehicles_alike_share_one_capability_set() -> None:
    first, second = make("v-1", Powertrain.BEV), make("v-2", Powertrain.BEV)
    assert first.capabilities == get_catalog().default_capabilities(Powertrain.BEV)
    assert first.capabilities is second.capabilities
    lacking = make("v-3", Powertrain.BEV, lacks=["tractionbattery-stateofcharge"])
    assert lacking.capabilities is not first.capabilities
    assert lacking.capabilities == first.capabilities - {"tractionbattery-stateofcharge"}


def test_a_set_seen_on_one_powertrain_is_still_checked_on_another() -> None:
    """An ICE's set holds the fuel level; the same set on a BEV is refused, seen before or not."""
    ice = make("v-ice", Powertrain.ICE)
    assert FUEL in ice.capabilities
    for _ in range(2):
        with pytest.raises(ValidationError, match="cannot physically have"):
            Vehicle(
                id="v-bev", vin=placeholder_vin("v-bev"), make="Make", model="Model", year=2024,
                powertrain=Powertrain.BEV, capabilities=ice.capabilities,
            )  # fmt: skip


def test_the_shared_sets_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vehicle_module, "SHARED_CAPABILITIES_MAX", 2)
    monkeypatch.setattr(vehicle_module, "_SHARED_CAPABILITIES", {})
    signals = sorted(get_catalog().default_capabilities(Powertrain.BEV))[:4]
    vehicles = [make(f"v-{n}", Powertrain.BEV, lacks=[signal]) for n, signal in enumerate(signals)]
    assert len(vehicle_module._SHARED_CAPABILITIES) <= 2
    assert [signal not in v.capabilities for v, signal in zip(vehicles, signals, strict=True)] == [True] * 4
