"""An application: the client of Connect and the API, with its own redirect URIs, mode, configs and filters."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints
from pydantic.dataclasses import dataclass

DEFAULT_APP_ID = "default"
"""The application every command uses when none is named; data written before applications existed is its."""

# Client ids become parts of Redis keys: the same plain alphabet as other resource ids.
APP_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
AppId = Annotated[str, StringConstraints(pattern=APP_ID_PATTERN)]
MAX_CLIENT_SECRETS = 3
"""Client secrets valid at once (Smartcar's number): rotating a fourth in retires the oldest."""


class AppMode(StrEnum):
    """Which vehicles Connect offers: the simulated fleet's owners (live, simulated) or Smartcar's test accounts."""

    LIVE = "live"
    TEST = "test"
    SIMULATED = "simulated"


@dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class Application:
    """An app registered with fleetgate. Its secrets and management token are kept elsewhere, hashed."""

    id: AppId
    """The OAuth client id."""
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    mode: AppMode = AppMode.LIVE
    redirect_uris: tuple[str, ...] = ()
    """Where Connect may send the user back; the first is the default when an authorize request names none."""
    created_at: AwareDatetime | None
    """None for the default application until something is stored for it."""
    secrets: Annotated[int, Field(ge=0, le=MAX_CLIENT_SECRETS)] = 0
    """How many client secrets are valid now."""
    permissions: tuple[str, ...] = ()
    """The permissions the app may request in Connect (as Smartcar's dashboard enables them); empty: any."""

    def not_allowed(self, requested: Iterable[str]) -> list[str]:
        """The requested permissions this app may not request, sorted (none when it may request any)."""
        if not self.permissions:
            return []
        return sorted(set(requested) - set(self.permissions))

    def redirect_uri(self, requested: str | None) -> str | None:
        """The redirect URI an authorize request may use: the requested one if registered (exactly), else the
        first registered when none is requested; None when it is not allowed (never redirect there)."""
        if requested is None or requested == "":
            return self.redirect_uris[0] if self.redirect_uris else None
        return requested if requested in self.redirect_uris else None
