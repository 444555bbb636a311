"""The simulator's Connect accounts (simulator/accounts.py, connect_test_mode.py), on fakeredis: Smartcar's
test-mode conventions and the simulated fleet's owners."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import fakeredis
import pytest

from schemas.application import AppMode
from schemas.catalog import get_catalog
from schemas.errors import InvalidSubscriptionError, NoVehiclesError, VehicleIncompatibleError
from schemas.powertrain import Powertrain
from services.http.accounts import AccountDirectory, LoginRefused
from services.keyspace import Keys
from services.registry import Registry
from simulator.accounts import FLEET_PASSWORD, SimulatorAccounts, group_owners, owner_email, store_owners
from simulator.fleet import generate_fleet

VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")  # ISO 3779: what generated VINs keep (Smartcar's named ones do not)
EVERYTHING = frozenset(s.key for s in get_catalog().signals) | frozenset(c.key for c in get_catalog().commands)


@pytest.fixture
async def registry() -> AsyncIterator[Registry]:
    redis = fakeredis.FakeAsyncRedis()
    yield Registry(redis, Keys("acc"))
    await redis.aclose()


@pytest.fixture
def accounts(registry: Registry) -> SimulatorAccounts:
    return SimulatorAccounts(registry)


async def login_test(accounts: AccountDirectory, email: str, make: str | None = None) -> object:
    return await accounts.login(email, "any", make=make, mode=AppMode.TEST)


async def test_any_email_gives_one_chevrolet_volt_capable_of_everything(
    accounts: SimulatorAccounts, registry: Registry
) -> None:
    """Any email and password: one Chevrolet Volt PHEV (the default brand), capable of every signal and command,
    registered in the registry."""
    account = await accounts.login("Someone@Example.com", "pw", make="CHEVROLET", mode=AppMode.TEST)
    assert account.error is None
    (vehicle,) = account.vehicles
    assert (vehicle.make, vehicle.model, vehicle.powertrain) == ("Chevrolet", "Volt", Powertrain.PHEV)
    assert vehicle.capabilities == EVERYTHING
    assert VIN.match(vehicle.vin)
    assert await registry.vehicle(vehicle.id) == vehicle


async def test_same_email_same_account(accounts: SimulatorAccounts) -> None:
    """The same email (any case) gives the same user id, vehicle ids and VINs; another email different ones."""
    first = await accounts.login("a@example.com", "x", make="TESLA", mode=AppMode.TEST)
    again = await accounts.login(" A@Example.COM", "y", make="TESLA", mode=AppMode.TEST)
    other = await accounts.login("b@example.com", "x", make="TESLA", mode=AppMode.TEST)
    assert first == again
    assert first.user_id != other.user_id
    assert first.vehicles[0].id != other.vehicles[0].id


async def test_other_brand_gives_a_model_of_that_brand(accounts: SimulatorAccounts) -> None:
    """A brand of the fleet mix gives one of its models; a brand outside it a plausible one."""
    tesla = (await accounts.login("t@example.com", "x", make="TESLA", mode=AppMode.TEST)).vehicles[0]
    assert tesla.make == "Tesla"
    assert tesla.model.startswith("Model")
    assert tesla.powertrain is Powertrain.BEV
    audi = (await accounts.login("t@example.com", "x", make="AUDI", mode=AppMode.TEST)).vehicles[0]
    assert audi.make == "Audi"


async def test_n_vehicles_accounts(accounts: SimulatorAccounts) -> None:
    """`<N>-vehicles@smartcar.com` gives N distinct vehicles; 0 ends in no_vehicles; above 999 is refused."""
    account = await accounts.login("25-vehicles@smartcar.com", "x", make=None, mode=AppMode.TEST)
    assert len(account.vehicles) == 25
    assert len({v.id for v in account.vehicles}) == len({v.vin for v in account.vehicles}) == 25
    assert all(VIN.match(v.vin) for v in account.vehicles)
    empty = await accounts.login("0-vehicles@smartcar.com", "x", make=None, mode=AppMode.TEST)
    assert (empty.vehicles, type(empty.error)) == ((), NoVehiclesError)
    with pytest.raises(LoginRefused):
        await accounts.login("1000-vehicles@smartcar.com", "x", make=None, mode=AppMode.TEST)


@pytest.mark.parametrize(
    ("level", "powertrain", "capabilities"),
    [
        ("compatible", Powertrain.PHEV, EVERYTHING),
        ("phev", Powertrain.PHEV, get_catalog().default_capabilities(Powertrain.PHEV)),
        ("fuel", Powertrain.ICE, get_catalog().default_capabilities(Powertrain.ICE)),
        ("bev", Powertrain.BEV, get_catalog().default_capabilities(Powertrain.BEV)),
    ],
)
async def test_vin_at_level_gives_that_vin_and_capabilities(
    accounts: SimulatorAccounts, level: str, powertrain: Powertrain, capabilities: frozenset[str]
) -> None:
    """`<VIN>@<level>.smartcar.com` gives that VIN with the level's powertrain and capability set."""
    account = await accounts.login(f"1hgcm82633a004352@{level}.smartcar.com", "x", make="HONDA", mode=AppMode.TEST)
    (vehicle,) = account.vehicles
    assert (vehicle.vin, vehicle.powertrain, vehicle.capabilities) == ("1HGCM82633A004352", powertrain, capabilities)
    assert account.error is None


async def test_vin_incompatible_and_invalid_vin(accounts: SimulatorAccounts) -> None:
    """`<VIN>@incompatible.smartcar.com` ends in vehicle_incompatible; a VIN with I, O or Q is refused."""
    account = await accounts.login("1hgcm82633a004352@incompatible.smartcar.com", "x", make=None, mode=AppMode.TEST)
    assert isinstance(account.error, VehicleIncompatibleError)
    assert account.error.code == "vehicle_incompatible"
    with pytest.raises(LoginRefused, match="not a valid VIN"):
        await accounts.login("1hgcm82633a00435o@bev.smartcar.com", "x", make=None, mode=AppMode.TEST)


@pytest.mark.parametrize(
    ("email", "vin", "error"),
    [
        ("smartcar@successful-request.com", "0SCAUDI037A5ADB1C", None),
        ("smartcar@vehicle-incompatible.com", "0SCAUDI012FE3B132", VehicleIncompatibleError),
        ("smartcar@invalid-subscription.com", "0SCAUDI0155C49A95", InvalidSubscriptionError),
    ],
)
async def test_named_accounts(accounts: SimulatorAccounts, email: str, vin: str, error: type[Exception] | None) -> None:
    """Smartcar's named test accounts give their VIN and end in their Connect error."""
    account = await accounts.login(email, "x", make="TESLA", mode=AppMode.TEST)
    assert [v.vin for v in account.vehicles] == [vin]
    assert type(account.error) is error if error else account.error is None


async def test_test_mode_needs_an_email_and_a_password(accounts: SimulatorAccounts) -> None:
    """An address without @ or an empty password is refused."""
    for email, password in (("nobody", "x"), ("a@example.com", "")):
        with pytest.raises(LoginRefused):
            await accounts.login(email, password, make=None, mode=AppMode.TEST)


def test_owners_group_consecutive_vehicles_deterministically() -> None:
    """Owners hold 1 to 3 consecutive vehicles, every vehicle once; the same seed gives the same owners."""
    ids = [f"sim-{n:06d}" for n in range(50)]
    owners = group_owners(ids, seed=7)
    assert owners == group_owners(ids, seed=7)
    assert [v for o in owners for v in o.vehicle_ids] == ids
    assert all(1 <= len(o.vehicle_ids) <= 3 for o in owners)
    assert owners[0].email == owner_email(0) == "owner000000@fleet.fleetgate.test"
    assert len({o.user_id for o in owners}) == len(owners)


@pytest.mark.parametrize("mode", [AppMode.LIVE, AppMode.SIMULATED])
async def test_fleet_owner_login(accounts: SimulatorAccounts, registry: Registry, mode: AppMode) -> None:
    """A stored owner signs in with the fleet password and gets their registered vehicles, whatever their
    powertrain; a wrong password or an unknown email is refused."""
    fleet = generate_fleet(12, seed=3)
    await registry.add_vehicles(fleet)
    owners = group_owners([v.id for v in fleet], seed=3)
    await store_owners(registry.redis, registry.keys, owners)
    owner = owners[1]
    account = await accounts.login(owner.email.upper(), FLEET_PASSWORD, make=None, mode=mode)
    assert account.user_id == owner.user_id
    assert tuple(v.id for v in account.vehicles) == owner.vehicle_ids
    assert account.error is None
    with pytest.raises(LoginRefused):
        await accounts.login(owner.email, "wrong", make=None, mode=mode)
    with pytest.raises(LoginRefused):
        await accounts.login("owner999999@fleet.fleetgate.test", FLEET_PASSWORD, make=None, mode=mode)


async def test_fleet_owner_without_registered_vehicles_ends_in_no_vehicles(
    accounts: SimulatorAccounts, registry: Registry
) -> None:
    """An owner whose vehicles are no longer registered signs in to an account that ends in no_vehicles."""
    owners = group_owners(["gone-1"], seed=1)
    await store_owners(registry.redis, registry.keys, owners)
    account = await accounts.login(owners[0].email, FLEET_PASSWORD, make=None, mode=AppMode.LIVE)
    assert (account.vehicles, type(account.error)) == ((), NoVehiclesError)


async def test_test_mode_is_not_the_fleet(accounts: SimulatorAccounts) -> None:
    """In live mode a test-mode email is unknown (refused), not a test account."""
    with pytest.raises(LoginRefused):
        await accounts.login("smartcar@successful-request.com", "x", make=None, mode=AppMode.LIVE)
