"""The one root exception of the domain package, and its few specialisations.

A denial is never an exception: `decide()` returns it as a result. Exceptions here mean the *input* to the
domain (a scope string, a config file, a grant) is wrong, and their message names the offending token.
"""

from __future__ import annotations

from pydantic import ValidationError


class FleetgateError(Exception):
    """The project's one root exception: `schemas` raises it, `services` and `simulator` raise its subclasses."""


class CatalogError(FleetgateError):
    """The catalog data file is inconsistent (raised once, at load time)."""


class UnknownNameError(FleetgateError, ValueError):
    """A signal code, command name or permission name that the catalog does not know.

    Also a ValueError, so that inside a pydantic model it becomes a validation error located at its key.
    """

    def __init__(self, what: str, name: str, suggestions: list[str]) -> None:
        self.what = what
        self.name = name
        self.suggestions = suggestions
        message = f"unknown {what} {name!r}"
        if suggestions:
            message += f"; did you mean {', '.join(repr(s) for s in suggestions)}?"
        super().__init__(message)


class ConnectError(FleetgateError):
    """A Connect flow refused; `code` is Smartcar Connect's redirect error code and `description` its exact
    `error_description` (reference §1.3): the one place those strings live."""

    code = "server_error"
    description = "Unexpected server error. Please try again."


class ScopeError(ConnectError):
    """A malformed scope parameter (Connect answers `configuration_error`); `token` is the offending one."""

    code = "configuration_error"
    description = "There has been an error in the configuration of your application."

    def __init__(self, message: str, token: str | None = None) -> None:
        self.token = token
        super().__init__(message)


class AccessDeniedError(ConnectError):
    """The owner's grant screen cannot be completed as asked (Connect answers `access_denied`)."""

    code = "access_denied"
    description = "User denied access to application."


class VehicleIncompatibleError(ConnectError):
    """The Connection Filters exclude the vehicle's powertrain (Connect answers `vehicle_incompatible`)."""

    code = "vehicle_incompatible"
    description = "The user\u2019s vehicle is not compatible."


class InvalidSubscriptionError(ConnectError):
    """The owner's connected-services subscription is inactive (Connect answers `invalid_subscription`)."""

    code = "invalid_subscription"
    description = "User does not have an active connected vehicle subscription."


class NoVehiclesError(ConnectError):
    """The owner's connected-services account holds no vehicle (Connect answers `no_vehicles`)."""

    code = "no_vehicles"
    # Smartcar's table repeats invalid_subscription's text here; its example has this one (fleetgate's pick).
    description = "No vehicles found. Please add vehicles to your account and try again."


class ConfigurationError(ConnectError):
    """The authorize request or the flow cannot go on as configured (Connect answers `configuration_error`, with
    `status_code` and `error_message`: what the user saw)."""

    code = "configuration_error"
    description = ScopeError.description


class UserReturnedError(ConnectError):
    """The owner chose "Back to application" before granting access."""

    code = "user_manually_returned_to_application"
    description = "The user exited Connect before granting your application access"


class OemCancelledLoginError(ConnectError):
    """The owner left the carmaker's login (not reachable in fleetgate's simulated login; listed for completeness)."""

    code = "oem_cancelled_login"
    description = "The user did not complete authorization with the OEM"


class ConfigError(FleetgateError):
    """A Vehicle Access config that does not validate; the message names the key or line."""


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, each located at its key (e.g. `signals[2].code: unknown signal 'x'`; 0-based)."""
    lines = []
    for error in exc.errors(include_url=False):
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]).lstrip(".")
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return "\n".join(lines)
