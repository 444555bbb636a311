"""Decision outcomes and the Smartcar-shaped error object each non-ALLOWED outcome carries."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Outcome(StrEnum):
    """Listed in precedence order: the first that applies to a request is its outcome."""

    REJECTED = "REJECTED"
    UNAUTHORIZED = "UNAUTHORIZED"
    VEHICLE_NOT_CAPABLE = "VEHICLE_NOT_CAPABLE"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    ALLOWED = "ALLOWED"


ResolutionType = Literal["REAUTHENTICATE", "RETRY_LATER", "CONTACT_SUPPORT"]


class Resolution(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: ResolutionType | None


class SmartcarError(BaseModel):
    """The error object of Smartcar's v2 API, field names as Smartcar spells them."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True, serialize_by_alias=True)

    type: str
    code: str | None
    description: str
    status_code: int = Field(alias="statusCode")
    request_id: str = Field(alias="requestId")
    resolution: Resolution
    suggested_user_message: str = Field(alias="suggestedUserMessage")
    doc_url: str = Field(alias="docURL")


@dataclass(frozen=True, slots=True)
class Problem:
    """An error object without its request id: built once per (outcome, target), filled per request."""

    type: str
    code: str | None
    description: str
    status_code: int
    resolution: ResolutionType | None
    suggested_user_message: str

    @property
    def doc_url(self) -> str:
        anchor = (self.code or "null").lower().replace("_", "-")
        return f"https://smartcar.com/docs/errors/api-errors/{self.type.lower().replace('_', '-')}-errors#{anchor}"

    def for_request(self, request_id: str) -> SmartcarError:
        return SmartcarError(
            type=self.type,
            code=self.code,
            description=self.description,
            status_code=self.status_code,
            request_id=request_id,
            resolution=Resolution(type=self.resolution),
            suggested_user_message=self.suggested_user_message,
            doc_url=self.doc_url,
        )


_RETRY_OR_CONTACT = "Something went wrong with this request. Please contact the app's developer."


def rejected(description: str, *, parameter: bool = False) -> Problem:
    """A request that cannot be processed as sent: malformed (code null) or a bad parameter (PARAMETER)."""
    return Problem("VALIDATION", "PARAMETER" if parameter else None, description, 400, None, _RETRY_OR_CONTACT)


UNAUTHORIZED = Problem(
    "AUTHENTICATION",
    None,
    "The connection is unknown, revoked, or not for this vehicle.",
    401,
    "REAUTHENTICATE",
    "This app is no longer connected to your vehicle. Please connect it again.",
)


def not_capable(target_label: str) -> Problem:
    return Problem(
        "COMPATIBILITY",
        "VEHICLE_NOT_CAPABLE",
        f"The vehicle is not capable of {target_label}.",
        501,
        None,
        "Your car is unable to perform this request.",
    )


def permission_denied(permission: str, target_label: str) -> Problem:
    return Problem(
        "PERMISSION",
        None,
        f"The connection was not granted {permission}, which {target_label} needs.",
        403,
        "REAUTHENTICATE",
        "This app needs another permission for this. Please reconnect your vehicle and grant it.",
    )
