"""OpenAPI links (OAS 3.1 Link Objects) of the HTTP API: which value of one answer another operation takes, so a
client (or schemathesis' stateful tests) can walk from a listing to the operations on what it lists.

Only what the document can say truthfully: a link names where a parameter's value comes from, never which
credentials to call with (OpenAPI ignores an `Authorization` parameter). A vehicle id from the management listing
reaches the vehicle's operations only with the token of that connection's user; any other token is answered
AUTHENTICATION 401, as for an unknown vehicle.
"""

from __future__ import annotations

from typing import Any

from schemas.api_v2 import get_endpoints

V2_VEHICLE = "/v2.0/vehicles/{vehicle_id}/"
V3_VEHICLE = "/v3/vehicles/{vehicle_id}"
_EXTRA_V2 = (
    ("POST", "batch"),
    ("GET", "permissions"),
    ("DELETE", "application"),
    ("POST", "webhooks/{webhook_id}"),
)
"""The v2 operations on a vehicle besides schemas/api_v2.toml's: batch, the identity endpoints, and subscribing
to a webhook (its id is the app's own, not in the listing)."""
_V3 = (("GET", ""), ("GET", "/signals"), ("GET", "/signals/{code}"), ("POST", "/commands/{group}/{name}"))

Link = dict[str, Any]


def operation_ref(method: str, path: str) -> str:
    """`#/paths/<path as a JSON pointer token>/<method>`: the operation in this document (OAS' own example
    writes the path's braces as they are)."""
    return f"#/paths/{path.replace('~', '~0').replace('/', '~1')}/{method.lower()}"


def vehicle_operations() -> list[tuple[str, str, str]]:
    """(link name, method, path) of every operation on one vehicle a user's access token calls: the v2 vehicle
    endpoints, batch, permissions and disconnect, and the v3 vehicle, signals and commands."""
    v2 = [(e.method, e.path) for e in get_endpoints().endpoints] + list(_EXTRA_V2)
    operations = [(_name("v2", method, path or "attributes"), method, V2_VEHICLE + path) for method, path in v2]
    operations += [(_name("v3", method, path or "vehicle"), method, V3_VEHICLE + path) for method, path in _V3]
    return operations


def _name(version: str, method: str, path: str) -> str:
    words = path.replace("{", "").replace("}", "").replace("/", " ").split()
    return "_".join([version, method.lower(), *words])


def to_vehicle_operations(vehicle_id: str, whose: str) -> dict[str, Link]:
    """A link to each of `vehicle_operations()` with `vehicle_id` from this runtime expression."""
    return {
        name: {
            "operationRef": operation_ref(method, path),
            "parameters": {"vehicle_id": vehicle_id},
            "description": f"{method} {path} for this vehicle, with {whose}",
        }
        for name, method, path in vehicle_operations()
    }


def ok(description: str, links: dict[str, Link]) -> dict[str, Any]:
    """A 200 response's extra documentation for FastAPI's `responses=` (merged with its model's schema)."""
    return {"description": description, "links": links}
