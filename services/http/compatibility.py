"""`GET /v2.0/compatibility?vin&scope&country`: can this vehicle give these permissions? (Smartcar's compatibility
by VIN, v2 shape: `{compatible, reason, capabilities: [{permission, endpoint, capable, reason}]}`, every key
present, as the official SDK reads them.)

It decides from the catalog and the vehicle's registered capabilities only: no vehicle data is read, so the call
does not go through the pipeline (nothing for the gatekeeper to authorize: the client authenticates with HTTP Basic
`client_id:client_secret`, and the answer is about a VIN, not about anyone's connection).

- A permission is capable when the vehicle supports a signal or command of the catalog that needs it (reason
  null); otherwise VEHICLE_NOT_CAPABLE, or SMARTCAR_NOT_CAPABLE for a permission no catalog target needs.
  `endpoint` is the v3 path of the permission's first catalog target the vehicle supports (else the first one):
  fleetgate's, Smartcar names the v2 endpoint.
- `compatible` is true when every requested permission is capable; `reason` is then null, else
  VEHICLE_NOT_COMPATIBLE (fleetgate's reading of "compatible with the required permissions").
- Live mode: the vehicle is found by VIN in the registry's VIN index (services/registry/vins.py: one HMGET for an
  unknown VIN, whatever the fleet's size); an unknown VIN is `compatible: false`, reason VEHICLE_NOT_COMPATIBLE,
  every capability SMARTCAR_NOT_CAPABLE (fleetgate's choice: not an error, as Smartcar answers for vehicles it does
  not support).
- Test mode (a test-mode app, `mode=test`, or one of Smartcar's `0SC...` test VINs): the vehicle is the
  `test_mode_compatibility_level` (query, or the SDK's `flags=test_mode_compatibility_level:bev`, since the v2
  SDK sends no other parameter): compatible (everything), phev, fuel (ICE), bev (their powertrain's defaults);
  incompatible (reason MAKE_NOT_COMPATIBLE) and dinosaur (reason VEHICLE_NOT_COMPATIBLE) are not compatible.
  A missing level is VALIDATION 400 naming the field.
- Bad or missing credentials: AUTHENTICATION 401. A missing or malformed vin or scope, an unknown permission:
  VALIDATION 400 (PARAMETER) naming it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from schemas.application import AppMode
from schemas.catalog import Command, Signal, get_catalog
from schemas.powertrain import Powertrain
from schemas.problems import HTTP_AUTHENTICATION, HTTP_VALIDATION_PARAMETER, HttpSmartcarError
from schemas.vehicle import VIN_PATTERN
from services.http.auth import BasicCredentials, client_basic
from services.http.context import HttpContext, get_context
from services.http.errors import error_response

router = APIRouter(tags=["compatibility"])
TEST_VIN_PREFIX = "0SC"
LEVEL_FIELD = "test_mode_compatibility_level"
LEVELS: dict[str, Powertrain | None] = {
    "compatible": None,  # every target of the catalog
    "phev": Powertrain.PHEV,
    "fuel": Powertrain.ICE,
    "bev": Powertrain.BEV,
    "incompatible": Powertrain.ICE,
    "dinosaur": Powertrain.ICE,
}
NOT_COMPATIBLE = {"incompatible": "MAKE_NOT_COMPATIBLE", "dinosaur": "VEHICLE_NOT_COMPATIBLE"}
VEHICLE_NOT_COMPATIBLE = "VEHICLE_NOT_COMPATIBLE"
_VIN = re.compile(VIN_PATTERN)


class Capability(BaseModel):
    permission: str
    endpoint: str | None
    capable: bool
    reason: str | None


class Compatibility(BaseModel):
    compatible: bool
    reason: str | None
    capabilities: list[Capability]


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": HttpSmartcarError, "description": "VALIDATION: a missing or bad vin, scope or test-mode level"},
    401: {"model": HttpSmartcarError, "description": "AUTHENTICATION: bad client credentials"},
}


def _targets_by_permission() -> dict[str, list[Signal | Command]]:
    catalog = get_catalog()
    found: dict[str, list[Signal | Command]] = {name: [] for name in catalog.permission_names}
    every: tuple[Signal | Command, ...] = (*catalog.signals, *catalog.commands)
    for target in every:
        found[target.permission].append(target)
    return found


TARGETS = _targets_by_permission()


def _endpoint(target: Signal | Command) -> str:
    if isinstance(target, Signal):
        return f"/v3/vehicles/{{id}}/signals/{target.code}"
    path = target.endpoint.removeprefix("v3 ").removeprefix("v2 ")
    return f"/v3/vehicles/{{id}}/{path}" if target.endpoint.startswith("v3 ") else f"/v2.0/vehicles/{{id}}/{path}"


def capabilities(permissions: Iterable[str], supported: frozenset[str] | None) -> list[Capability]:
    """Each permission's capability for a vehicle supporting `supported` (None: a vehicle fleetgate does not know)."""
    found = []
    for permission in permissions:
        targets = TARGETS[permission]
        usable = [t for t in targets if supported is not None and t.key in supported]
        first = usable[0] if usable else (targets[0] if targets else None)
        if usable:
            reason = None
        elif supported is None or not targets:
            reason = "SMARTCAR_NOT_CAPABLE"
        else:
            reason = "VEHICLE_NOT_CAPABLE"
        endpoint = None if first is None else _endpoint(first)
        found.append(Capability(permission=permission, endpoint=endpoint, capable=bool(usable), reason=reason))
    return found


def answer(permissions: list[str], supported: frozenset[str] | None, *, refused: str | None = None) -> Compatibility:
    """The whole answer; `refused` names why a vehicle is not compatible at all (every capability false)."""
    found = capabilities(permissions, None if refused else supported)
    if refused:
        found = [c.model_copy(update={"reason": "VEHICLE_NOT_CAPABLE"}) for c in found]
    compatible = refused is None and supported is not None and all(c.capable for c in found)
    reason = None if compatible else (refused or VEHICLE_NOT_COMPATIBLE)
    return Compatibility(compatible=compatible, reason=reason, capabilities=found)


def level_capabilities(level: str) -> frozenset[str]:
    catalog = get_catalog()
    powertrain = LEVELS[level]
    if powertrain is None:
        return catalog.physically_possible(Powertrain.UNKNOWN)
    return catalog.default_capabilities(powertrain)


def _level_of(level: str | None, flags: str | None) -> str | None:
    if level:
        return level
    for flag in (flags or "").split():
        name, _, value = flag.partition(":")
        if name == LEVEL_FIELD and value:
            return value
    return None


@router.get(
    "/v2.0/compatibility",
    response_model=Compatibility,
    responses=ERRORS,
    summary="Whether a VIN can give the requested permissions (from the catalog: no vehicle data is read)",
)
async def get_compatibility(  # noqa: PLR0917 - FastAPI's parameters
    request: Request,
    context: Annotated[HttpContext, Depends(get_context)],
    credentials: Annotated[BasicCredentials | None, Depends(client_basic)],
    vin: Annotated[str | None, Query()] = None,
    scope: Annotated[str | None, Query(description="space-separated permissions")] = None,
    country: Annotated[str, Query()] = "US",
    mode: Annotated[str | None, Query()] = None,
    test_mode_compatibility_level: Annotated[str | None, Query()] = None,
    flags: Annotated[str | None, Query()] = None,
) -> Any:
    del country  # capabilities are the same in every country here (Smartcar: US only)
    app = None if credentials is None else await context.apps.authenticate_client(*_pair(credentials))
    if app is None:
        return error_response(request, HTTP_AUTHENTICATION)
    if not vin or not _VIN.match(vin.upper()):
        return _bad(request, "vin: a 17-character VIN is required.")
    permissions = (scope or "").split()
    if not permissions:
        return _bad(request, "scope: at least one permission is required.")
    unknown = [p for p in permissions if p not in TARGETS]
    if unknown:
        return _bad(request, f"scope: unknown permission(s): {', '.join(unknown)}.")
    permissions = list(dict.fromkeys(permissions))
    vin = vin.upper()
    if app.mode is AppMode.TEST or mode == "test" or vin.startswith(TEST_VIN_PREFIX):
        level = _level_of(test_mode_compatibility_level, flags)
        if level is None:
            return _bad(request, f"{LEVEL_FIELD} is required in test mode ({', '.join(LEVELS)}).")
        if level not in LEVELS:
            return _bad(request, f"{LEVEL_FIELD} must be one of {', '.join(LEVELS)}, not {level!r}.")
        return answer(permissions, level_capabilities(level), refused=NOT_COMPATIBLE.get(level))
    vehicle = await context.registry.vehicle_by_vin(vin)
    return answer(permissions, None if vehicle is None else vehicle.capabilities)


def _pair(credentials: BasicCredentials) -> tuple[str, str]:
    return credentials.username, credentials.password


def _bad(request: Request, description: str) -> JSONResponse:
    return error_response(request, HTTP_VALIDATION_PARAMETER, description=description)
