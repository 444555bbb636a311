"""API v3 bodies, pure: signal resources, command executions and errors in the shape Smartcar really sends
(../shared/reference/smartcar_connect_api.md §2.1, the "Real responses" table, where the docs differ).

- A signal resource is `{id, type: "signal", attributes: {code, name, group, status, body}, meta, links}`; `meta`
  holds ISO strings `retrievedAt`, `oemUpdatedAt`, `ingestedAt` (only `ingestedAt` when there is no value).
- `status.value` is SUCCESS, ERROR (with `status.error` `{type, code, title, detail, description:
  "Deprecated. Use detail", resolution}`) or UNAVAILABLE (capable and permitted, but no value: fleetgate's use).
- PERMISSION and VEHICLE_NOT_CAPABLE carry the exact strings of the real responses; other errors the catalogue's
  description as `detail` and the code in title case as `title` (fleetgate's).
- Units as the real responses name them (`km`, `km/h`, `percent`, `watts`); the simulated vehicles speak the
  catalog's names, renamed here (UNIT_NAMES; units the real responses never showed keep the catalog's name).
- Top-level errors `{"errors": [{status, type, code, title, detail, resolution, suggestedUserMessage?, links:
  {about}}]}` (smartcar.md §2). The docs are inconsistent (examples with lowercase codes, the errors guide with
  typed ones): fleetgate sends Smartcar's type and code, and where Smartcar's code is null the docs' lowercase
  code (`unauthorized`, `bad_request`, `forbidden`, `not_found`, `internal_error`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from schemas.catalog import Signal
from schemas.problems import HTTP_PERMISSION, NO_USER_MESSAGE, Problem
from schemas.signal_names import group_name, signal_name
from schemas.vehicle import Vehicle

UNIT_NAMES = {"kilometers": "km", "kph": "km/h", "kilowatt_hours": "kWh"}
"""Catalog unit -> the name the real v3 responses use (kWh: fleetgate's, no real response showed it)."""
LOWERCASE_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 500: "internal_error"}
DEPRECATED_DESCRIPTION = "Deprecated. Use detail"
UNKNOWN_RESOLUTION = "UNKNOWN_RESOLUTION_TYPE"
NOT_CAPABLE_DETAIL = "The vehicle is incapable of performing your request."


def iso(value: str | datetime | None) -> str | None:
    """An RFC 3339 time (or datetime) as the real responses write it: UTC, milliseconds, `Z`."""
    if value is None:
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def real_units(body: Any) -> Any:
    """The body with every `unit` renamed as the real responses name it (nested objects and lists too)."""
    if isinstance(body, dict):
        return {k: (UNIT_NAMES.get(v, v) if k == "unit" else real_units(v)) for k, v in body.items()}
    if isinstance(body, list):
        return [real_units(item) for item in body]
    return body


def title_of(code: str) -> str:
    return code.replace("_", " ").title()


def signal_error(error: dict[str, Any]) -> dict[str, Any]:
    """A per-signal `status.error` from a Smartcar v2 error object (a decision's or a response's)."""
    kind, code = str(error.get("type")), error.get("code")
    if kind == "PERMISSION":
        return _signal_error(kind, "UNKNOWN", HTTP_PERMISSION.description, "REAUTHENTICATE")
    if code == "VEHICLE_NOT_CAPABLE":
        return _signal_error(kind, code, NOT_CAPABLE_DETAIL, None)
    resolution = (error.get("resolution") or {}).get("type")
    return _signal_error(kind, str(code or "UNKNOWN"), str(error.get("description", "")), resolution)


def problem_error(problem: Problem) -> dict[str, Any]:
    """A per-signal `status.error` from a catalogue entry (a call nobody answered: UPSTREAM / NO_RESPONSE)."""
    return signal_error(
        {
            "type": problem.type,
            "code": problem.code,
            "description": problem.description,
            "resolution": {"type": problem.resolution},
        }
    )


def _signal_error(kind: str, code: str, detail: str, resolution: str | None) -> dict[str, Any]:
    return {
        "type": kind,
        "code": code,
        "title": title_of(code),
        "detail": detail,
        "description": DEPRECATED_DESCRIPTION,
        "resolution": {"type": resolution or UNKNOWN_RESOLUTION},
    }


def signal_resource(
    signal: Signal,
    vehicle_id: str,
    *,
    status: str,
    error: dict[str, Any] | None = None,
    body: Any = None,
    retrieved_at: str | None = None,
    oem_updated_at: str | None = None,
    ingested_at: str | datetime,
) -> dict[str, Any]:
    """One signal as the real list and single-signal responses carry it."""
    attributes: dict[str, Any] = {
        "code": signal.code,
        "name": signal_name(signal),
        "group": group_name(signal),
        "status": {"value": status} if error is None else {"value": status, "error": error},
    }
    if body is not None:
        attributes["body"] = real_units(body)
    meta: dict[str, Any] = {}
    if retrieved_at is not None:
        meta["retrievedAt"] = iso(retrieved_at)
    if oem_updated_at is not None:
        meta["oemUpdatedAt"] = iso(oem_updated_at)
    meta["ingestedAt"] = iso(ingested_at)
    base = f"/v3/vehicles/{vehicle_id}"
    return {
        "id": signal.code,
        "type": "signal",
        "attributes": attributes,
        "meta": meta,
        "links": {"self": f"{base}/signals/{signal.code}", "vehicle": base},
    }


def vehicle_resource(vehicle: Vehicle, mode: str) -> dict[str, Any]:
    """`included.vehicle` (and GET /v3/vehicles/{id}'s `data`): the real attributes add powertrainType and mode."""
    return {
        "id": vehicle.id,
        "type": "vehicle",
        "attributes": {
            "make": vehicle.make,
            "model": vehicle.model,
            "year": vehicle.year,
            "powertrainType": vehicle.powertrain.value,
            "mode": mode,
        },
        "links": {"self": f"/v3/vehicles/{vehicle.id}"},
    }


def error_document(problem: Problem, *, detail: str | None = None) -> dict[str, Any]:
    """A top-level v3 error body for a catalogue entry; `detail` overrides its description (fleetgate's detail)."""
    code = problem.code or LOWERCASE_CODES.get(problem.status_code, "error")
    entry: dict[str, Any] = {
        "status": str(problem.status_code),
        "type": problem.type,
        "code": code,
        "title": title_of(code),
        "detail": detail or problem.description,
        "resolution": {"type": problem.resolution},
    }
    if problem.suggested_user_message != NO_USER_MESSAGE:
        entry["suggestedUserMessage"] = problem.suggested_user_message
    entry["links"] = {"about": problem.doc_url}
    return {"errors": [entry]}


def problem_of(error: dict[str, Any]) -> Problem:
    """A Smartcar v2 error object (a decision's or a response's) as a catalogue entry."""
    return Problem(
        str(error.get("type")),
        error.get("code"),
        str(error.get("description", "")),
        int(error.get("statusCode", 500)),
        (error.get("resolution") or {}).get("type"),
        str(error.get("suggestedUserMessage") or NO_USER_MESSAGE),
    )
