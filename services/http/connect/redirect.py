"""Redirects back to the application: only ever to a flow's validated redirect URI, its own query kept.

Success is `code` and `state` (`vehicle_id` and `state` for re-authentication); a refusal is `error`,
`error_description` (Smartcar's exact text, from the ConnectError classes of schemas/errors.py), any extra
parameters of that error, and `state`.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi.responses import RedirectResponse

from schemas.errors import ConfigurationError, ConnectError
from services.http.connect.flow import Flow, FlowVehicle


def with_query(uri: str, params: dict[str, str | None]) -> str:
    """`uri` with `params` appended to its query (None values left out), percent-encoded."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(name, value) for name, value in params.items() if value is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def back_to_app(flow: Flow, params: dict[str, str | None]) -> RedirectResponse:
    """302 to the flow's redirect URI with `params` and the flow's `state`."""
    return RedirectResponse(with_query(flow.redirect_uri, {**params, "state": flow.state}), status_code=302)


def error_redirect(
    flow: Flow, error: type[ConnectError] | ConnectError, extra: dict[str, str | None] | None = None
) -> RedirectResponse:
    """Connect's error redirect: `error`, its exact `error_description`, the error's extra parameters."""
    return back_to_app(flow, {"error": error.code, "error_description": error.description, **(extra or {})})


def configuration_error(flow: Flow, message: str, status_code: int = 400) -> RedirectResponse:
    """`configuration_error` with `status_code` and `error_message` (what the user would have seen)."""
    return error_redirect(flow, ConfigurationError, {"status_code": str(status_code), "error_message": message})


def vehicle_params(vehicle: FlowVehicle | None) -> dict[str, str | None]:
    """`make`, `model`, `year`, `vin` of a `vehicle_incompatible` redirect (none when no vehicle is known)."""
    if vehicle is None:
        return {}
    return {"make": vehicle.make, "model": vehicle.model, "year": str(vehicle.year), "vin": vehicle.vin}
