"""A connection: one vehicle's grant to the app, with the scopes granted at its time."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, ConfigDict, Field
from pydantic.dataclasses import dataclass

from schemas.application import DEFAULT_APP_ID, AppId
from schemas.permissions import PermissionSet
from schemas.vehicle import ResourceId


class ConnectionStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
    """Final: a revoked connection never becomes active again."""


# A validated dataclass for the same reason as Vehicle: fast attribute reads in decide().
@dataclass(frozen=True, slots=True, kw_only=True, config=ConfigDict(extra="forbid"))
class Connection:
    """One owner's consent for one vehicle: the permissions granted at Connect, until re-auth or revocation."""

    id: ResourceId
    vehicle_id: ResourceId
    permissions: PermissionSet
    config_version: Annotated[int, Field(ge=1)] | None = None
    """The Vehicle Access version the permissions were derived from; None when a scope override was used."""
    scope: str | None = None
    """The scope override the permissions came from, if any."""
    status: ConnectionStatus = ConnectionStatus.ACTIVE
    created_at: AwareDatetime
    updated_at: AwareDatetime
    app_id: AppId = DEFAULT_APP_ID
    """The application the owner granted; the same vehicle may be connected to several apps."""
    user_id: ResourceId | None = None
    """The connected-services account that granted it (Connect's user); None for connections made without one
    (the command line, the simulator's owners)."""
