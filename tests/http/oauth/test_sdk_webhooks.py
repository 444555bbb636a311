"""Subscriptions through the official smartcar SDK against the test's server (a real uvicorn on the session's
redis-server): `Vehicle.subscribe` stores the subscription with the user's connection and makes a FIRST_DELIVERY
event on the vehicle's webhook-events stream; `Vehicle.unsubscribe` with the management token removes it; the
errors are Smartcar-shaped."""

from __future__ import annotations

import functools
import json
from typing import Any, cast

import httpx
import pytest
import smartcar

from schemas.webhooks import Reason, Webhook, WebhookEvent
from services.webhooks.store import Subscription, WebhookStore
from tests.http.oauth.conftest import OAuthWorld, sdk

pytestmark = pytest.mark.redis
SOC = "tractionbattery-stateofcharge"


async def webhook_of(world: OAuthWorld, amt: str, app_id: str, *, verified: bool = True) -> Webhook:
    store = WebhookStore(world.redis, world.keys)
    made = await store.create(
        app_id, management_token=amt, name="Battery", callback_url="https://hooks.example/h", signals=[SOC]
    )
    return await store.set_verified(made, verified) if verified else made


async def events(world: OAuthWorld, vehicle_id: str) -> list[WebhookEvent]:
    """The webhook events made about the vehicle, oldest first."""
    stream = world.keys.shard_of_vehicle(vehicle_id).webhook_events
    entries = cast("list[tuple[bytes, dict[bytes, bytes]]]", await world.redis.xrange(stream))
    found = [WebhookEvent.model_validate(json.loads(fields[b"data"])) for _, fields in entries]
    return [event for event in found if event.vehicle_id == vehicle_id]  # a shard's stream holds other vehicles


async def raised(call: Any) -> smartcar.SmartcarException:
    try:
        await sdk(call)
    except smartcar.SmartcarException as error:
        return error
    raise AssertionError("no SmartcarException")


async def test_subscribe_stores_the_subscription_and_makes_a_first_delivery_event(world: OAuthWorld) -> None:
    """subscribe answers the webhook and vehicle ids; the subscription holds the user's connection; each subscribe
    (a re-subscribe too) makes one FIRST_DELIVERY event with its own event id, for the token's user."""
    webhook = await webhook_of(world, world.amt, world.client_id)
    access = await world.user_access("user-1", "veh-a")
    connection = (await world.registry.user_connections(world.client_id, "user-1"))[0]
    vehicle = smartcar.Vehicle("veh-a", access.access_token)
    subscribed = await sdk(lambda: vehicle.subscribe(webhook.id))
    assert (subscribed.webhook_id, subscribed.vehicle_id) == (webhook.id, "veh-a")
    store = WebhookStore(world.redis, world.keys)
    assert await store.subscribers(webhook.id) == {"veh-a": connection.id}
    assert await store.of_vehicle("veh-a") == [Subscription(webhook.id, "veh-a", connection.id)]
    await sdk(lambda: vehicle.subscribe(webhook.id))
    first, again = await events(world, "veh-a")
    for event in (first, again):
        assert (event.reason, event.event_type.value) == (Reason.FIRST_DELIVERY, "VEHICLE_STATE")
        assert (event.webhook_id, event.vehicle_id) == (webhook.id, "veh-a")
        assert (event.connection_id, event.user_id, event.errors) == (connection.id, "user-1", ())
    assert first.event_id != again.event_id


async def test_unsubscribe_with_the_management_token_removes_the_subscription(world: OAuthWorld) -> None:
    """unsubscribe(amt, id) answers success and the vehicle is no longer subscribed; doing it again is success
    too (DELETE is idempotent); no event is made."""
    webhook = await webhook_of(world, world.amt, world.client_id)
    access = await world.user_access("user-1", "veh-a", "veh-b")
    store = WebhookStore(world.redis, world.keys)
    for vehicle_id in ("veh-a", "veh-b"):
        await sdk(functools.partial(smartcar.Vehicle(vehicle_id, access.access_token).subscribe, webhook.id))
    vehicle = smartcar.Vehicle("veh-a", access.access_token)
    assert (await sdk(lambda: vehicle.unsubscribe(world.amt, webhook.id))).status == "success"
    assert list(await store.subscribers(webhook.id)) == ["veh-b"]
    assert await store.of_vehicle("veh-a") == []
    assert (await sdk(lambda: vehicle.unsubscribe(world.amt, webhook.id))).status == "success"
    assert len(await events(world, "veh-a")) == 1


async def test_subscribe_errors_are_smartcar_shaped(world: OAuthWorld) -> None:
    """A vehicle the token does not reach is AUTHENTICATION 401; an unknown webhook and another app's alike are
    RESOURCE_NOT_FOUND 404; an unverified webhook is VALIDATION 400 saying so; none stores or emits anything."""
    mine = await webhook_of(world, world.amt, world.client_id)
    unverified = await webhook_of(world, world.amt, world.client_id, verified=False)
    theirs = await webhook_of(world, world.other_app.management_token, world.other_app.app.id)
    access = await world.user_access("user-1", "veh-a")
    await world.connect_vehicle("user-2", "veh-b")
    not_reached = await raised(lambda: smartcar.Vehicle("veh-b", access.access_token).subscribe(mine.id))
    assert (not_reached.status_code, not_reached.type, not_reached.code) == (401, "AUTHENTICATION", None)
    vehicle = smartcar.Vehicle("veh-a", access.access_token)
    for webhook_id in ("00000000-0000-0000-0000-000000000000", theirs.id):
        missing = await raised(lambda w=webhook_id: vehicle.subscribe(w))
        assert (missing.status_code, missing.type, missing.code) == (404, "RESOURCE_NOT_FOUND", "PATH")
    refused = await raised(lambda: vehicle.subscribe(unverified.id))
    assert (refused.status_code, refused.type, refused.code) == (400, "VALIDATION", "PARAMETER")
    assert refused.description.startswith("The webhook is not verified")
    store = WebhookStore(world.redis, world.keys)
    for webhook in (mine, unverified, theirs):
        assert await store.subscribers(webhook.id) == {}
    assert await events(world, "veh-a") == []
    assert await events(world, "veh-b") == []


async def test_unsubscribe_errors_are_smartcar_shaped(world: OAuthWorld) -> None:
    """unsubscribe with a user's access token, or no token, is AUTHENTICATION 401; with another app's management
    token the webhook is RESOURCE_NOT_FOUND 404; the subscription stays."""
    webhook = await webhook_of(world, world.amt, world.client_id)
    access = await world.user_access("user-1", "veh-a")
    vehicle = smartcar.Vehicle("veh-a", access.access_token)
    await sdk(lambda: vehicle.subscribe(webhook.id))
    with_user_token = await raised(lambda: vehicle.unsubscribe(access.access_token, webhook.id))
    assert (with_user_token.status_code, with_user_token.type) == (401, "AUTHENTICATION")
    other_amt = world.other_app.management_token
    with_other_app = await raised(lambda: vehicle.unsubscribe(other_amt, webhook.id))
    assert (with_other_app.status_code, with_other_app.type) == (404, "RESOURCE_NOT_FOUND")
    async with httpx.AsyncClient(base_url=world.base_url) as http:
        bare = await http.delete(f"/v2.0/vehicles/veh-a/webhooks/{webhook.id}")
    assert (bare.status_code, bare.json()["type"]) == (401, "AUTHENTICATION")
    assert bare.json()["requestId"] == bare.headers["sc-request-id"]
    assert list(await WebhookStore(world.redis, world.keys).subscribers(webhook.id)) == ["veh-a"]
