"""Webhook subscriptions of API v2: the official SDK's `Vehicle.subscribe(webhook_id)` and
`Vehicle.unsubscribe(amt, webhook_id)` (docs/webhooks.md).

- `POST /v2.0/vehicles/{vehicle_id}/webhooks/{webhook_id}` with a user's access token: the vehicle is subscribed
  through the user's active connection to the token's app (a vehicle the token does not reach is the same
  AUTHENTICATION 401 as a bad token, as for every identity endpoint), and a `FIRST_DELIVERY` event is made, on a
  first subscribe and on every re-subscribe alike (as Smartcar). Answers `{"webhookId", "vehicleId"}`.
- `DELETE` of the same path with `Authorization: Bearer <management token>` (not Basic: the SDK sends Bearer):
  the subscription is removed; a vehicle that was not subscribed is answered the same `{"status": "success"}`
  (fleetgate's choice: DELETE is idempotent, so a retried unsubscribe does not fail).
- fleetgate's choices where Smartcar says nothing: a webhook id that is unknown or another app's is
  RESOURCE_NOT_FOUND / PATH 404 (the same for both, so nothing tells whether another app's webhook exists); a
  webhook whose endpoint has not answered VERIFY is refused with VALIDATION / PARAMETER 400 and a description
  saying so, since nothing would ever be delivered to it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from schemas.application import Application
from schemas.problems import HTTP_VALIDATION_PARAMETER, HttpSmartcarError
from schemas.webhooks import Reason, Webhook
from services.http.auth import management_bearer
from services.http.context import HttpContext, get_context
from services.http.errors import error_response
from services.http.identity import ERRORS as IDENTITY_ERRORS
from services.http.identity import Grant, Status
from services.http.revocation import user_connection
from services.webhooks.events import emit, new_event
from services.webhooks.store import Subscription, WebhookStore

MAX_ID = 128
PATH = "/v2.0/vehicles/{vehicle_id}/webhooks/{webhook_id}"
NOT_VERIFIED = (
    "The webhook is not verified: its callback URL has not answered the VERIFY challenge, so nothing would be"
    " delivered to it. Verify it first (fleetgate webhooks verify <webhook id>)."
)

router = APIRouter(tags=["webhooks"])
Context = Annotated[HttpContext, Depends(get_context)]
VehicleId = Annotated[str, Path(min_length=1, max_length=MAX_ID)]
WebhookId = Annotated[str, Path(min_length=1, max_length=MAX_ID)]
NOT_FOUND: dict[str, object] = {
    "model": HttpSmartcarError,
    "description": "RESOURCE_NOT_FOUND / PATH: no such webhook of this app",
}
SUBSCRIBE_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": HttpSmartcarError, "description": "VALIDATION / PARAMETER: a bad id, or an unverified webhook"},
    401: IDENTITY_ERRORS[401],
    404: NOT_FOUND,
}
UNSUBSCRIBE_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": HttpSmartcarError, "description": "VALIDATION / PARAMETER: a bad id"},
    401: {"model": HttpSmartcarError, "description": "AUTHENTICATION: not a management token"},
    404: NOT_FOUND,
}


class Subscribed(BaseModel):
    webhook_id: str = Field(serialization_alias="webhookId")
    vehicle_id: str = Field(serialization_alias="vehicleId")


async def token_app(context: Context, token: Annotated[str | None, Depends(management_bearer)]) -> Application:
    """The application whose management token is the Bearer token; AUTHENTICATION 401 otherwise."""
    app = None if token is None else await context.apps.app_of_management_token(token)
    if app is None:
        raise HTTPException(401)
    return app


async def app_webhook(context: HttpContext, app_id: str, webhook_id: str) -> Webhook:
    """The app's webhook; RESOURCE_NOT_FOUND 404 for an unknown id and for another app's alike."""
    webhook = await WebhookStore(context.redis, context.registry.keys).find(webhook_id)
    if webhook is None or webhook.app_id != app_id:
        raise HTTPException(404)
    return webhook


@router.post(
    PATH,
    response_model=Subscribed,
    responses=SUBSCRIBE_ERRORS,
    summary="Subscribe the vehicle to one of the app's webhooks (a FIRST_DELIVERY event follows)",
)
async def subscribe(
    request: Request, grant: Grant, context: Context, vehicle_id: VehicleId, webhook_id: WebhookId
) -> Subscribed | JSONResponse:
    assert grant.user_id is not None
    connection = await user_connection(context, grant.app_id, grant.user_id, vehicle_id)
    if connection is None:
        raise HTTPException(401)
    webhook = await app_webhook(context, grant.app_id, webhook_id)
    if not webhook.verified:
        return error_response(request, HTTP_VALIDATION_PARAMETER, description=NOT_VERIFIED)
    subscription = Subscription(webhook.id, vehicle_id, connection.id)
    await WebhookStore(context.redis, context.registry.keys).subscribe(webhook.id, vehicle_id, connection.id)
    await emit(context.redis, context.registry.keys, [new_event(subscription, grant.user_id, Reason.FIRST_DELIVERY)])
    return Subscribed(webhook_id=webhook.id, vehicle_id=vehicle_id)


@router.delete(
    PATH,
    response_model=Status,
    responses=UNSUBSCRIBE_ERRORS,
    summary="Unsubscribe the vehicle from the webhook (with the app's management token as Bearer)",
)
async def unsubscribe(
    app: Annotated[Application, Depends(token_app)], context: Context, vehicle_id: VehicleId, webhook_id: WebhookId
) -> Status:
    webhook = await app_webhook(context, app.id, webhook_id)
    await WebhookStore(context.redis, context.registry.keys).unsubscribe(webhook.id, vehicle_id)
    return Status(status="success")
