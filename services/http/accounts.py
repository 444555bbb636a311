"""The accounts Connect's login screen signs into: a protocol, so that `services` never imports the simulator.

`fleetgate serve` passes the simulator's implementation (simulator/accounts.py): Smartcar's test-mode accounts
for an app in test mode, the simulated fleet's owners for one in live or simulated mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from schemas.application import AppMode
from schemas.errors import ConnectError
from schemas.vehicle import Vehicle
from services.errors import ServiceError


class LoginRefused(ServiceError):  # noqa: N818 - a refusal the login screen shows, named as the flow reads it
    """The email and password do not open an account; `reason` is what the login screen shows."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class Account:
    """A connected-services account the owner signed into, and the vehicles on it."""

    user_id: str
    """Stable per account (the same login gives the same id): the Connect redirect's and /v2.0/user's `id`."""
    email: str
    vehicles: tuple[Vehicle, ...]
    error: ConnectError | None = None
    """Set when the flow must end in this Connect error redirect (its `code`: vehicle_incompatible,
    invalid_subscription, no_vehicles) instead of showing the grant screen."""


class AccountDirectory(Protocol):
    """Signs an owner in. The vehicles it returns are registered in the registry (the gatekeeper decides on
    them); Connection Filters are the flow's business, not the directory's."""

    async def login(self, email: str, password: str, *, make: str | None, mode: AppMode) -> Account:
        """The account behind the credentials; raises LoginRefused for unknown ones or a wrong password.

        `make` is the brand the owner chose (or the authorize request's `make=`), upper case, or None.
        """
        ...
