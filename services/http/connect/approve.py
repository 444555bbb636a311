"""The grant screen's Allow: everything posted re-checked, then each chosen vehicle connected.

Nothing is written unless every check passes: the vehicles are the account's and admitted by the app's
Connection Filters (at least one; exactly one with single select), each posted permission was requested (the
optional ones left checked; required ones are disabled on the screen, so never posted, and always granted: posting
one changes nothing), and at least one permission is left. Then `ConnectService.connect` per vehicle: a new
connection, or the user's existing one with the app re-authorized.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas.errors import AccessDeniedError, VehicleIncompatibleError
from schemas.grant import grant
from services.http.connect.flow import Flow
from services.http.context import HttpContext

NO_VEHICLE = "Choose a vehicle to connect."
ONE_VEHICLE = "Choose exactly one vehicle."
UNKNOWN_VEHICLE = "A vehicle chosen is not one this account can connect."
NOT_REQUESTED = "A permission chosen is not one the application requested."
NO_PERMISSION = "At least one permission must remain selected."


@dataclass(frozen=True, slots=True)
class Approval:
    """What the grant form posted: `vehicle` ids and the optional `permission`s left checked."""

    vehicle_ids: Sequence[str]
    permissions: Sequence[str]


async def approve(context: HttpContext, flow: Flow, approval: Approval) -> str | VehicleIncompatibleError | None:
    """Connect the chosen vehicles; None when done, else why not (a message for the grant screen, or the filters
    now refusing a vehicle). Raises on anything unexpected (the flow answers `server_error`)."""
    chosen = list(dict.fromkeys(approval.vehicle_ids))
    if not chosen:
        return NO_VEHICLE
    if flow.single_select and len(chosen) != 1:
        return ONE_VEHICLE
    admitted = {v.id for v in flow.admitted}
    if not set(chosen) <= admitted:
        return UNKNOWN_VEHICLE
    requested = flow.permissions
    optional = {name for name in requested if not requested.is_required(name)}
    posted = set(approval.permissions)
    if not posted <= set(requested):
        return NOT_REQUESTED
    unchecked = sorted(optional - posted)
    try:
        grant(requested, unchecked)
    except AccessDeniedError:
        return NO_PERMISSION
    filters = await context.registry.filters(flow.app_id)
    vehicles = await context.registry.vehicles_by_id(chosen)
    for vehicle in vehicles:
        if vehicle is None:
            return UNKNOWN_VEHICLE
        if not filters.admits(vehicle.powertrain):
            return VehicleIncompatibleError(f"the app's Connection Filters exclude {vehicle.powertrain}")
    assert flow.user_id is not None
    for vehicle_id in chosen:
        await context.connect.connect(flow.app_id, flow.user_id, vehicle_id, scope=flow.scope, unchecked=unchecked)
    context.lookups.forget_all()
    return None
