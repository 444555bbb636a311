"""The accounts Connect signs into (services.http.accounts.AccountDirectory), as the simulator knows them.

An app in test mode gets Smartcar's test-mode accounts (connect_test_mode.py). An app in live or simulated mode
gets the simulated fleet's owners: `fleetgate simulate fleet` groups the fleet's vehicles into owners (1 to 3
consecutive vehicles each, seeded) and stores each as `P:owner:{email}` (services/keyspace.py). Every owner signs
in with the password FLEET_PASSWORD: these are simulated accounts, not secrets.
"""

from __future__ import annotations

import hmac
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass

from schemas.application import AppMode
from schemas.errors import NoVehiclesError
from services.http.accounts import Account, LoginRefused
from services.keyspace import Keys
from services.redis_client import Client
from services.registry import Registry
from services.registry.store import chunked
from simulator.connect_test_mode import normalize, test_mode_account, user_id

FLEET_PASSWORD = "fleetgate"
"""Every simulated fleet owner's password (documented; the accounts are simulated, not secrets)."""
OWNER_DOMAIN = "fleet.fleetgate.test"
MAX_VEHICLES_PER_OWNER = 3
WRONG_CREDENTIALS = "The email or password is incorrect."


@dataclass(frozen=True, slots=True)
class OwnerAccount:
    email: str
    user_id: str
    vehicle_ids: tuple[str, ...]


def owner_email(k: int) -> str:
    """Owner k's login, zero-padded like the fleet's vehicle ids (`owner000042@fleet.fleetgate.test`)."""
    return f"owner{k:06d}@{OWNER_DOMAIN}"


def group_owners(vehicle_ids: Sequence[str], seed: int) -> list[OwnerAccount]:
    """The fleet's vehicles, in order, grouped into owners of 1 to 3 consecutive vehicles; the same ids and seed
    give the same owners."""
    rng = random.Random(seed ^ 0x0A11CE)
    owners: list[OwnerAccount] = []
    start = 0
    while start < len(vehicle_ids):
        size = rng.randint(1, MAX_VEHICLES_PER_OWNER)
        email = owner_email(len(owners))
        owners.append(OwnerAccount(email, user_id(email), tuple(vehicle_ids[start : start + size])))
        start += size
    return owners


async def store_owners(redis: Client, keys: Keys, owners: Sequence[OwnerAccount]) -> int:
    """Write (or overwrite) the owners' records, pipelined; returns how many."""
    for chunk in chunked(owners):
        async with redis.pipeline(transaction=False) as pipe:
            for owner in chunk:
                record = {"user_id": owner.user_id, "vehicle_ids": list(owner.vehicle_ids)}
                pipe.set(keys.owner(owner.email), json.dumps(record, separators=(",", ":")))
            await pipe.execute()
    return len(owners)


class SimulatorAccounts:
    """The AccountDirectory `fleetgate serve` hands to the HTTP app."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def login(self, email: str, password: str, *, make: str | None, mode: AppMode) -> Account:
        if mode is AppMode.TEST:
            account = test_mode_account(email, password, make)
            await self.registry.add_vehicles(account.vehicles)  # so the gatekeeper can decide on them
            return account
        return await self._fleet_owner(normalize(email), password)

    async def _fleet_owner(self, email: str, password: str) -> Account:
        record = await self.registry.redis.get(self.registry.keys.owner(email))
        # compare_digest: the same time whatever the password, though it is no secret (habit for credentials).
        if record is None or not hmac.compare_digest(password.encode(), FLEET_PASSWORD.encode()):
            raise LoginRefused(WRONG_CREDENTIALS)
        owner = json.loads(record)
        found = await self.registry.vehicles_by_id(owner["vehicle_ids"])
        vehicles = tuple(v for v in found if v is not None)
        error = None if vehicles else NoVehiclesError(f"no registered vehicle on {email}")
        return Account(user_id=owner["user_id"], email=email, vehicles=vehicles, error=error)
