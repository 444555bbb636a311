"""What a sign-in leads to: the grant screen for the account's vehicles, or straight back to the app.

- The account's own error (test-mode accounts): its redirect (`vehicle_incompatible` with the vehicle's make,
  model, year and VIN; `invalid_subscription`; `no_vehicles`); no vehicle at all: `no_vehicles`.
- `single_select_vin`: only that VIN (not on the account: `configuration_error`).
- Re-authentication: only the connection's vehicle, which the user must have an active connection for with the
  app (else `configuration_error`).
- No vehicle the app's Connection Filters admit: `vehicle_incompatible` with the first one's make, model, year
  and VIN. fleetgate's choice: Smartcar does not document which error the filters give (reference §1.4).
- `approval_prompt=auto` (authorize only): when every vehicle already has an active connection with the app
  holding every permission requested, a code at once, without the grant screen.
"""

from __future__ import annotations

from fastapi.responses import RedirectResponse

from schemas.errors import NoVehiclesError, VehicleIncompatibleError
from services.http.accounts import Account
from services.http.connect.flow import Flow, FlowKind, FlowVehicle
from services.http.connect.redirect import back_to_app, configuration_error, error_redirect, vehicle_params
from services.http.context import HttpContext


async def signed_in(context: HttpContext, flow: Flow, account: Account) -> Flow | RedirectResponse:
    """The flow, signed in and ready for its grant screen; or the redirect that ends it."""
    filters = await context.registry.filters(flow.app_id)
    vehicles = [
        FlowVehicle(id=v.id, make=v.make, model=v.model, year=v.year, vin=v.vin, admitted=filters.admits(v.powertrain))
        for v in account.vehicles
    ]
    if account.error is not None:
        incompatible = isinstance(account.error, VehicleIncompatibleError)
        return error_redirect(flow, account.error, vehicle_params(vehicles[0] if vehicles and incompatible else None))
    if not vehicles:
        return error_redirect(flow, NoVehiclesError)
    connected = {c.vehicle_id: c for c in await context.registry.user_connections(flow.app_id, account.user_id)}
    if flow.single_select_vin is not None:
        vehicles = [v for v in vehicles if v.vin.upper() == flow.single_select_vin]
        if not vehicles:
            return configuration_error(flow, f"The vehicle with VIN {flow.single_select_vin} is not on this account.")
    if flow.kind is FlowKind.REAUTHENTICATE:
        vehicles = [v for v in vehicles if v.id == flow.reauth_vehicle_id]
        if not vehicles or flow.reauth_vehicle_id not in connected:
            return configuration_error(flow, "This account has no connection with the application for that vehicle.")
    if not any(v.admitted for v in vehicles):
        return error_redirect(flow, VehicleIncompatibleError, vehicle_params(vehicles[0]))
    flow = flow.model_copy(update={"user_id": account.user_id, "vehicles": vehicles})
    requested = flow.permissions.granted
    if (
        flow.kind is FlowKind.AUTHORIZE
        and flow.approval_prompt == "auto"
        and all(v.id in connected and requested & ~connected[v.id].permissions.granted == 0 for v in vehicles)
    ):
        code = await context.tokens.issue_code(flow.app_id, account.user_id, flow.redirect_uri)
        return back_to_app(flow, {"code": code})
    return flow
