"""Identity endpoints of API v2 for a user's access token: who the user is, their vehicles, a vehicle's
permissions, and disconnecting a vehicle.

- `Authorization: Bearer <access token>`; a missing, malformed, unknown, expired or revoked token is Smartcar's
  AUTHENTICATION 401.
- A user's vehicles are their active connections to the token's app, in vehicle id order (stable across pages).
- fleetgate's choice: a vehicle id the token does not reach (another user's, another app's, revoked, unknown)
  is the same AUTHENTICATION 401 as a bad token, so nothing tells whether the vehicle exists; the gatekeeper's
  UNAUTHORIZED answers the vehicle API the same way.
- Paging: `limit` 1-50 (default 10) for vehicles, 1-50 (default 25) for permissions, `offset` >= 0;
  `paging.count` is the total, not the page's size. Anything else is VALIDATION / PARAMETER 400.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from schemas.problems import HttpSmartcarError
from services.http.auth import access_bearer
from services.http.context import HttpContext, get_context
from services.http.links import ok, to_vehicle_operations
from services.http.revocation import revoke_connections, user_connection
from services.registry import TokenGrant

MAX_LIMIT = 50
router = APIRouter(tags=["identity"])
ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": HttpSmartcarError, "description": "VALIDATION: bad paging"},
    401: {
        "model": HttpSmartcarError,
        "description": "AUTHENTICATION: bad token, or a vehicle the token does not reach",
    },
}


class User(BaseModel):
    id: str


class Paging(BaseModel):
    count: int
    """The total number of items, not the page's."""
    offset: int


class Vehicles(BaseModel):
    vehicles: list[str]
    paging: Paging


class Permissions(BaseModel):
    permissions: list[str]
    paging: Paging


class Status(BaseModel):
    status: str


async def user_grant(
    context: Annotated[HttpContext, Depends(get_context)], token: Annotated[str | None, Depends(access_bearer)]
) -> TokenGrant:
    """The app and user a valid access token stands for; AUTHENTICATION 401 otherwise."""
    grant = None if token is None else await context.lookups.access(context.tokens, token)
    if grant is None or grant.user_id is None:
        raise HTTPException(401)
    return grant


Grant = Annotated[TokenGrant, Depends(user_grant)]
Context = Annotated[HttpContext, Depends(get_context)]
VehicleId = Annotated[str, Path(min_length=1, max_length=128)]
Offset = Annotated[int, Query(ge=0)]


@router.get("/v2.0/user", response_model=User, responses=ERRORS, summary="The user the access token belongs to")
async def get_user(grant: Grant) -> User:
    assert grant.user_id is not None
    return User(id=grant.user_id)


VEHICLES_OK = ok(
    "The user's vehicle ids, a page of them",
    to_vehicle_operations("$response.body#/vehicles/0", "the same access token"),
)


@router.get(
    "/v2.0/vehicles",
    response_model=Vehicles,
    responses={**ERRORS, 200: VEHICLES_OK},
    summary="The user's vehicles connected to the app",
)
async def get_vehicles(
    grant: Grant,
    context: Context,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 10,
    offset: Offset = 0,
) -> Vehicles:
    assert grant.user_id is not None
    connections = await context.registry.user_connections(grant.app_id, grant.user_id)
    ids = [c.vehicle_id for c in connections]
    return Vehicles(vehicles=ids[offset : offset + limit], paging=Paging(count=len(ids), offset=offset))


@router.get(
    "/v2.0/vehicles/{vehicle_id}/permissions",
    response_model=Permissions,
    responses=ERRORS,
    summary="The permissions the user granted the app for this vehicle",
)
async def get_permissions(
    grant: Grant,
    context: Context,
    vehicle_id: VehicleId,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 25,
    offset: Offset = 0,
) -> Permissions:
    assert grant.user_id is not None
    connection = await user_connection(context, grant.app_id, grant.user_id, vehicle_id)
    if connection is None:
        raise HTTPException(401)
    names = list(connection.permissions)
    return Permissions(permissions=names[offset : offset + limit], paging=Paging(count=len(names), offset=offset))


@router.delete(
    "/v2.0/vehicles/{vehicle_id}/application",
    response_model=Status,
    responses=ERRORS,
    summary="Disconnect the vehicle from the app (the user's last one: their tokens are revoked too)",
)
async def disconnect(grant: Grant, context: Context, vehicle_id: VehicleId) -> Status:
    assert grant.user_id is not None
    connection = await user_connection(context, grant.app_id, grant.user_id, vehicle_id)
    if connection is None or not await revoke_connections(context, [connection]):
        raise HTTPException(401)
    return Status(status="success")
