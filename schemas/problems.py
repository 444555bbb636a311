"""Decision outcomes and the Smartcar-shaped error object each non-ALLOWED outcome carries."""

from __future__ import annotations

from dataclasses import dataclass, replace
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


class HttpSmartcarError(SmartcarError):
    """The error object as the HTTP API answers it (its OpenAPI model): `suggestedUserMessage` is left out where
    Smartcar publishes none (NO_USER_MESSAGE, services/http/errors.py)."""

    suggested_user_message: str = Field(default="", alias="suggestedUserMessage")


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


def for_app(problem: Problem, app_name: str) -> Problem:
    """The problem with Smartcar's `<app name>` placeholder in its user message filled in."""
    return replace(problem, suggested_user_message=problem.suggested_user_message.replace("<app name>", app_name))


# Smartcar's error catalogue for what a vehicle (rather than the policy) refuses: type, code, description,
# statusCode, resolution and suggestedUserMessage exactly as Smartcar publishes them
# (../shared/reference/smartcar_connect_api.md §3, tested against it), apart from entries marked as fleetgate's.
# `<app name>` is Smartcar's placeholder: `for_app()` fills it in.
_APP_MESSAGE = (
    "Your car is temporarily unable to connect to <app name>. Please be patient while we\u2019re working to resolve"
    " this issue."
)


def _vehicle_state(code: str, description: str, message: str, resolution: ResolutionType | None = None) -> Problem:
    return Problem("VEHICLE_STATE", code, description, 409, resolution, message)


def _upstream(code: str, description: str) -> Problem:
    return Problem("UPSTREAM", code, description, 502, "RETRY_LATER", _APP_MESSAGE)


VEHICLE_STATE_PROBLEMS: dict[str, Problem] = {
    p.code or "": p
    for p in (
        _vehicle_state(
            "ASLEEP",
            "The vehicle is in a sleep state and temporarily unable to perform your request.",
            # sic: Smartcar's message ends with a space.
            "Your vehicle is in a sleep state. This request was not sent to preserve battery life. ",
        ),
        _vehicle_state(
            "UNREACHABLE",
            "The vehicle was unable to perform your request because it is currently unreachable.",
            "Your vehicle is currently unreachable. Ensure the vehicle has adequate mobile coverage.",
        ),
        _vehicle_state(
            "CHARGE_FAULT",
            "The vehicle is connected to an EV charger but cannot perform the request because 1) the charger is not"
            " providing any current, or 2) there is a conflict with another charging schedule.",
            "Your vehicle is unable to start or stop charging because of a conflict with the vehicle's charging"
            " schedule.",
        ),
        _vehicle_state(
            "NOT_CHARGING",
            "The vehicle is unable to perform your request because it is not currently charging.",
            "Please ensure that you have plugged an EV charger into your car\u2019s charge port and the vehicle is"
            " charging.",
        ),
        _vehicle_state(
            "CHARGING_PLUG_NOT_CONNECTED",
            "The vehicle is not connected to an EV charger and unable to perform your request.",
            "Your vehicle is not plugged in.",
        ),
        # Smartcar lists the code but publishes no strings for it: fleetgate's wording, in Smartcar's style.
        _vehicle_state(
            "CHARGING_PLUG_CONNECTED",
            "The vehicle is connected to an EV charger and unable to perform your request.",
            "Your vehicle is plugged in. Please unplug it and try again.",
        ),
        _vehicle_state(
            "CHARGING_IN_PROGRESS",
            "The vehicle is currently charging and unable to perform your request.",
            "Your vehicle is already charging.",
        ),
        _vehicle_state(
            "FULLY_CHARGED",
            "The vehicle is unable to perform your request because its EV battery is fully charged.",
            "Your vehicle is already fully charged.",
        ),
        _vehicle_state(
            "IN_MOTION",
            "The vehicle is currently in motion and unable to perform your request.",
            "Your vehicle is unable to perform the request while in motion.",
        ),
        _vehicle_state(
            "DOOR_OPEN",
            "The vehicle could not perform your request because one or more of its doors are open.",
            "Your vehicle was unable to lock. Please ensure that all doors and the trunk are fully closed.",
        ),
        _vehicle_state(
            "REMOTE_ACCESS_DISABLED",
            "The vehicle is unable to perform your request because the user has disabled remote access for connected"
            " services.",
            "Your vehicle is unable to perform the request as remote access is disabled or unavailable.",
        ),
        _vehicle_state(
            "UNKNOWN",
            "The vehicle was unable to perform your request due to an unknown issue.",
            "Your vehicle is temporarily unable to connect due to an unknown issue. Please be patient while we\u2019re"
            " working to resolve this issue.",
            "RETRY_LATER",
        ),
        _vehicle_state(
            "LOW_BATTERY",
            "The vehicle was unable to perform your request because the 12v or high voltage battery is too low.",
            "Your vehicle battery is too low to perform this task.",
            "RETRY_LATER",
        ),
        _vehicle_state(
            "VEHICLE_OFFLINE_FOR_SERVICE",
            "The vehicle was unable to perform your request because it is currently in service mode.",
            "Your vehicle is in service mode and temporarily unable to perform this task.",
        ),
    )
}

UPSTREAM_PROBLEMS: dict[str, Problem] = {
    p.code or "": p
    for p in (
        _upstream(
            "INVALID_DATA",
            "Smartcar received invalid data from an upstream source. Please retry your request at a later time.",
        ),
        _upstream(
            "KNOWN_ISSUE",
            "Smartcar received an error from an upstream source. Please retry your request at a later time.",
        ),
        _upstream(
            "NO_RESPONSE",
            "One of Smartcar\u2019s upstream sources failed to respond. Please retry your request at a later time.",
        ),
        # Smartcar's page has no distinct sample (its JSON repeats NO_RESPONSE's): fleetgate's wording, from the
        # page's prose and its siblings' second sentence.
        _upstream(
            "RATE_LIMIT",
            "Your application\u2019s requests have exceeded this vehicle\u2019s rate limit. Please retry your request"
            " at a later time.",
        ),
        _upstream(
            "UNKNOWN_ISSUE",
            "Smartcar received an unknown error from an upstream source. Please retry your request at a later time and"
            " contact us if the issue persists.",
        ),
    )
}

RATE_LIMIT_PROBLEMS: dict[str, Problem] = {
    "VEHICLE": Problem(
        "RATE_LIMIT",
        "VEHICLE",
        "You have reached the throttling rate limit for this vehicle. Please see the retry-after header for when to"
        " retry the request.",
        429,
        "RETRY_LATER",
        "Your vehicle is temporarily unable to connect to <app name>. Please be patient while we\u2019re working to"
        " resolve this issue.",
    ),
}


# What the HTTP API answers itself, before any request reaches the stream: Smartcar's exact strings (§3) apart
# from entries marked as fleetgate's. Smartcar publishes no suggestedUserMessage for some: theirs is
# NO_USER_MESSAGE here, and an HTTP error body leaves the field out (services/http/errors.py).
NO_USER_MESSAGE = ""

HTTP_AUTHENTICATION = Problem(
    "AUTHENTICATION",
    None,
    "The authorization header is missing or malformed, or it contains invalid or expired authentication"
    " credentials. Please check for missing parameters, spelling and casing mistakes, and other syntax issues.",
    401,
    None,
    NO_USER_MESSAGE,
)
HTTP_PERMISSION = Problem(
    "PERMISSION",
    None,
    "Your application has insufficient permissions to access the requested resource. Please prompt the user to"
    " re-authenticate using Smartcar Connect.",
    403,
    "REAUTHENTICATE",
    NO_USER_MESSAGE,
)
HTTP_VALIDATION = Problem(
    "VALIDATION",
    None,
    "Request invalid or malformed. Please check for missing parameters, spelling and casing mistakes, and other"
    " syntax issues.",
    400,
    None,
    _APP_MESSAGE,
)
HTTP_VALIDATION_PARAMETER = Problem(
    "VALIDATION",
    "PARAMETER",
    "Your request is formatted correctly, but one or more of the provided parameters is incorrect.",
    400,
    None,
    _APP_MESSAGE,
)
HTTP_VEHICLE_NOT_CAPABLE = Problem(
    "COMPATIBILITY",
    "VEHICLE_NOT_CAPABLE",
    "The vehicle is incapable of performing your request.",
    501,
    None,
    "Your car is unable to perform this request.",
)
# fleetgate's wording: Smartcar publishes no catalogue entry for a path or method it does not serve.
HTTP_NOT_FOUND = Problem(
    "RESOURCE_NOT_FOUND",
    "PATH",
    "The requested resource does not exist. Please check the URL and try again.",
    404,
    None,
    NO_USER_MESSAGE,
)
HTTP_VERSION_NOT_FOUND = Problem(
    "RESOURCE_NOT_FOUND",
    "VERSION",
    "The requested API version does not exist. Please use version 2.0 (or 1.0).",
    404,
    None,
    NO_USER_MESSAGE,
)
HTTP_METHOD_NOT_ALLOWED = Problem(
    "RESOURCE_NOT_FOUND",
    "METHOD",
    "The requested resource does not support this HTTP method. Please check the method and the URL.",
    405,
    None,
    NO_USER_MESSAGE,
)
HTTP_RATE_LIMIT = Problem(
    "RATE_LIMIT",
    "SMARTCAR_API",
    "Your application has exceeded its rate limit. Please retry your request in a few minutes.",
    429,
    "RETRY_LATER",
    RATE_LIMIT_PROBLEMS["VEHICLE"].suggested_user_message,
)
HTTP_SERVER_INTERNAL = Problem(
    "SERVER",
    "INTERNAL",
    "An internal Smartcar error has occurred. Our team has been notified and is working to resolve this issue.",
    500,
    "RETRY_LATER",
    _APP_MESSAGE,
)
