"""Smartcar's test-mode accounts (reference §1.1), as pure functions of the login email and the chosen brand.

| email                                   | account                                                             |
|-----------------------------------------|---------------------------------------------------------------------|
| any other, any password                 | one vehicle of the chosen brand (CHEVROLET: a Chevrolet Volt PHEV)  |
| `<N>-vehicles@smartcar.com`, N 1..999   | N vehicles (N = 0: none, and the flow ends in `no_vehicles`)        |
| `<VIN>@<level>.smartcar.com`            | that VIN; level compatible (every signal and command), phev, fuel   |
|                                         | (ICE), bev (the powertrain's defaults), incompatible (ends in       |
|                                         | `vehicle_incompatible`)                                             |
| `smartcar@successful-request.com`       | VIN 0SCAUDI037A5ADB1C                                               |
| `smartcar@vehicle-incompatible.com`     | VIN 0SCAUDI012FE3B132, ends in `vehicle_incompatible`               |
| `smartcar@invalid-subscription.com`     | VIN 0SCAUDI0155C49A95, ends in `invalid_subscription`               |

The same email always gives the same account: ids, VINs, models and years derive from the lower-cased email.
A vehicle is capable of everything its powertrain can physically have, unless the email names another level.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import NamedTuple

from pydantic import ValidationError

from schemas.catalog import get_catalog
from schemas.errors import ConnectError, InvalidSubscriptionError, NoVehiclesError, VehicleIncompatibleError
from schemas.powertrain import Powertrain
from schemas.vehicle import VIN_PATTERN, Vehicle, placeholder_vin
from services.http.accounts import Account, LoginRefused
from services.http.brands import brand
from simulator.fleet import default_mix

MAX_TEST_VEHICLES = 999
DEFAULT_MAKE = "CHEVROLET"
_N_VEHICLES = re.compile(r"^(\d{1,4})-vehicles@smartcar\.com$")
_VIN_LEVEL = re.compile(r"^([a-z0-9]{17})@(compatible|phev|incompatible|fuel|bev)\.smartcar\.com$")
_VIN = re.compile(VIN_PATTERN)
_LEVEL_POWERTRAIN = {
    "compatible": Powertrain.PHEV,
    "phev": Powertrain.PHEV,
    "fuel": Powertrain.ICE,
    "bev": Powertrain.BEV,
    "incompatible": Powertrain.ICE,
}


class _Model(NamedTuple):
    make: str
    model: str
    powertrain: Powertrain
    year: int


_AUDI = _Model("Audi", "Q5 TFSI e", Powertrain.PHEV, 2021)
_NAMED: dict[str, tuple[str, type[ConnectError] | None]] = {
    "smartcar@successful-request.com": ("0SCAUDI037A5ADB1C", None),
    "smartcar@vehicle-incompatible.com": ("0SCAUDI012FE3B132", VehicleIncompatibleError),
    "smartcar@invalid-subscription.com": ("0SCAUDI0155C49A95", InvalidSubscriptionError),
}
# Brands Connect offers that the fleet mix does not sell: one plausible model each.
_OTHER_MODELS: dict[str, tuple[str, Powertrain, int]] = {
    "AUDI": ("Q5 TFSI e", Powertrain.PHEV, 2021),
    "CADILLAC": ("Lyriq", Powertrain.BEV, 2024),
    "RIVIAN": ("R1T", Powertrain.BEV, 2023),
    "VOLVO": ("XC60 Recharge", Powertrain.PHEV, 2022),
}
_NAMESPACE = uuid.NAMESPACE_URL


def user_id(email: str) -> str:
    """The account's user id: a uuid5 of the lower-cased email (the same login, the same user)."""
    return str(uuid.uuid5(_NAMESPACE, f"mailto:{normalize(email)}"))


def normalize(email: str) -> str:
    return email.strip().lower()


def test_mode_account(email: str, password: str, make: str | None) -> Account:
    """The test-mode account an email opens (any non-empty password); LoginRefused for what is not an email."""
    address = normalize(email)
    if "@" not in address or not password:
        raise LoginRefused("Enter an email address and a password.")
    make = (make or DEFAULT_MAKE).upper()
    if address in _NAMED:
        vin, error = _NAMED[address]
        vehicle = _vehicle(address, 0, vin, _AUDI, everything=True)
        return _account(address, (vehicle,), None if error is None else error(_refusal(error, vehicle)))
    if match := _N_VEHICLES.match(address):
        count = int(match[1])
        if count > MAX_TEST_VEHICLES:
            raise LoginRefused(f"Test accounts hold 1 to {MAX_TEST_VEHICLES} vehicles, not {count}.")
        vehicles = tuple(_generated(address, n, make) for n in range(count))
        return _account(address, vehicles, None if vehicles else NoVehiclesError("no vehicles on this account"))
    if match := _VIN_LEVEL.match(address):
        vin, level = match[1].upper(), match[2]
        if not _VIN.match(vin):
            raise LoginRefused(f"{vin} is not a valid VIN (17 letters and digits, no I, O or Q).")
        spec = _model_of(make, _digest(address, 0))._replace(powertrain=_LEVEL_POWERTRAIN[level])
        vehicle = _vehicle(address, 0, vin, spec, everything=level == "compatible")
        if level == "incompatible":
            return _account(address, (vehicle,), VehicleIncompatibleError(_refusal(VehicleIncompatibleError, vehicle)))
        return _account(address, (vehicle,), None)
    return _account(address, (_generated(address, 0, make),), None)


def _account(address: str, vehicles: tuple[Vehicle, ...], error: ConnectError | None) -> Account:
    return Account(user_id=user_id(address), email=address, vehicles=vehicles, error=error)


def _refusal(error: type[ConnectError], vehicle: Vehicle) -> str:
    what = f"{vehicle.make} {vehicle.model} {vehicle.year} ({vehicle.vin})"
    if error is InvalidSubscriptionError:
        return f"the connected services subscription of the {what} is inactive"
    return f"the {what} is not compatible"


def _digest(address: str, n: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{address}#{n}".encode()).digest()[:8], "big")


def _generated(address: str, n: int, make: str) -> Vehicle:
    """Vehicle n of an account: of the chosen brand, model and year drawn from the email's hash."""
    digest = _digest(address, n)
    vin = "0SC" + placeholder_vin(f"{address}#{n}")[3:]
    return _vehicle(address, n, vin, _model_of(make, digest), everything=True)


def _model_of(make: str, digest: int) -> _Model:
    """(brand name, model, powertrain, year) of the brand: from the fleet mix where it sells the brand."""
    if make == DEFAULT_MAKE:
        return _Model("Chevrolet", "Volt", Powertrain.PHEV, 2016 + digest % 4)
    known = brand(make)
    name = known.name if known else make.title()
    mixed = next((m for m in default_mix().makes if m.name.upper() == make), None)
    if mixed is not None:
        line = mixed.models[digest % len(mixed.models)]
        first, last = mixed.years
        return _Model(mixed.name, line.name, line.powertrain, first + (digest >> 8) % (last - first + 1))
    model, powertrain, year = _OTHER_MODELS.get(make, ("Test Vehicle", Powertrain.PHEV, 2022))
    return _Model(name, model, powertrain, year)


def _vehicle(address: str, n: int, vin: str, spec: _Model, *, everything: bool) -> Vehicle:
    catalog = get_catalog()
    capabilities = (
        catalog.physically_possible(spec.powertrain) if everything else catalog.default_capabilities(spec.powertrain)
    )
    vehicle_id = str(uuid.uuid5(_NAMESPACE, f"mailto:{address}#vehicle-{n}"))
    try:
        return Vehicle(
            id=vehicle_id,
            vin=vin,
            make=spec.make,
            model=spec.model,
            year=spec.year,
            powertrain=spec.powertrain,
            capabilities=capabilities,
        )
    except ValidationError as exc:  # a bug in the tables above, not the owner's input
        raise AssertionError(f"test-mode vehicle {vin}: {exc}") from exc
