"""A connection: one vehicle's grant to the app, with the scopes granted at its time."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.permissions import PermissionSet
from schemas.vehicle import Identifier


class ConnectionStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
    """Final: a revoked connection never becomes active again."""


class Connection(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Identifier
    vehicle_id: Identifier
    permissions: PermissionSet
    config_version: int | None = Field(default=None, ge=1)
    """The Vehicle Access version the permissions were derived from; None when a scope override was used."""
    scope: str | None = None
    """The scope override the permissions came from, if any."""
    status: ConnectionStatus = ConnectionStatus.ACTIVE
    created_at: AwareDatetime
    updated_at: AwareDatetime

    @property
    def is_active(self) -> bool:
        return self.status is ConnectionStatus.ACTIVE

    def revoked(self, at: datetime) -> Connection:
        return self.model_copy(update={"status": ConnectionStatus.REVOKED, "updated_at": at})
