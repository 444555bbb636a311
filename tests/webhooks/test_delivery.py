"""Deliveries on a real redis-server, through the real pipeline (gatekeeper and vehicles service) to a real
receiver that checks every signature with the official SDK: what a payload carries, decided at delivery time."""

from __future__ import annotations

import json

import pytest

from schemas.webhooks import Reason, Triggers, revoked_error
from services.registry import ConnectService, Registry
from services.webhooks import events
from services.webhooks.log import last_deliveries
from services.webhooks.store import Subscription
from simulator.vehicles.faults import Fault
from simulator.vehicles.store import update_faults
from tests.reliability.conftest import wait_until
from tests.webhooks.receiver import receiving
from tests.webhooks.world import CHARGING, FUEL, LOCKED, ODOMETER, SOC, USER, World, delivering

pytestmark = pytest.mark.redis


def by_code(body: dict[str, object]) -> dict[str, dict[str, object]]:
    signals = body["data"]["signals"]  # type: ignore[index]
    return {s["code"]: s for s in signals}


async def test_granted_signals_carry_values_and_the_others_their_error(world: World) -> None:
    """The granted signals carry their value; the unchecked one a PERMISSION entry, never data; the ICE signal
    on a BEV VEHICLE_NOT_CAPABLE; the payload is the 4.0 shape, signed (the SDK accepted it)."""
    async with receiving(world.amt) as receiver, delivering(world.settings, world.redis):
        webhook = await world.webhook(receiver.url + "/hook")
        (event,) = await world.emit(world.event(webhook, reason=Reason.FIRST_DELIVERY))
        (received,) = await receiver.wait_for(1)
    body = received.body
    assert received.path == "/hook"
    assert receiver.bad_signatures == []
    assert body["eventId"] == event.event_id
    assert body["eventType"] == "VEHICLE_STATE"
    assert body["data"]["user"] == {"id": USER}
    assert body["data"]["vehicle"]["id"] == "bev"
    assert body["data"]["vehicle"]["powertrainType"] == "BEV"
    assert body["triggers"] == [{"type": "FIRST_DELIVERY"}]
    assert body["meta"]["webhookId"] == webhook.id
    assert body["meta"]["version"] == "4.0"
    assert body["meta"]["signalCount"] == 4
    signals = by_code(body)
    assert signals[SOC]["status"] == {"value": "SUCCESS"}
    assert "value" in signals[SOC]["body"]  # type: ignore[operator]
    assert isinstance(signals[SOC]["meta"]["retrievedAt"], int)  # type: ignore[index]
    assert signals[ODOMETER]["status"] == {"value": "SUCCESS"}
    assert signals[CHARGING] == {
        "code": CHARGING,
        "name": signals[CHARGING]["name"],
        "group": signals[CHARGING]["group"],
        "status": {"value": "ERROR", "error": {"type": "PERMISSION", "code": None}},
    }
    assert signals[FUEL]["status"] == {
        "value": "ERROR",
        "error": {"type": "COMPATIBILITY", "code": "VEHICLE_NOT_CAPABLE"},
    }
    assert "body" not in signals[FUEL]
    (logged,) = await last_deliveries(world.redis, world.keys, webhook.id, 10)
    assert (logged["event_id"], logged["status"], logged["attempts"], logged["http_status"]) == (
        event.event_id,
        "delivered",
        1,
        204,
    )


async def test_a_change_check_delivers_only_what_changed(world: World) -> None:
    """After a delivery, a CHANGE_CHECK with nothing changed is not delivered (and acknowledged); once the
    vehicle is unlocked or locked, the next one is, with one SIGNAL_UPDATED trigger naming it."""
    triggers = Triggers(signal_changed=(LOCKED,))
    async with receiving(world.amt) as receiver, delivering(world.settings, world.redis):
        webhook = await world.webhook(receiver.url, signals=[SOC, LOCKED], triggers=triggers)
        first, unchanged = await world.emit(world.event(webhook), world.event(webhook, reason=Reason.CHANGE_CHECK))
        received_first = await receiver.wait_for(1)
        await world.settled()
        locked = by_code(received_first[0].body)[LOCKED]["body"]["value"]  # type: ignore[index]
        await world.set_signal("bev", LOCKED, not locked)
        (changed,) = await world.emit(world.event(webhook, reason=Reason.CHANGE_CHECK))
        received = await receiver.wait_for(2)
    assert [r.body["eventId"] for r in received] == [first.event_id, changed.event_id]
    assert unchanged.event_id not in receiver.event_ids()
    assert [t["type"] for t in received[1].body["triggers"]] == ["SIGNAL_UPDATED"]
    assert received[1].body["triggers"][0]["signal"]["code"] == LOCKED


async def test_vehicle_errors_also_go_to_the_error_url_once(world: World) -> None:
    """A revocation's VEHICLE_ERROR goes to the error callback URL as it is; after the connection is revoked,
    a state event for it is dropped (logged `skipped`), never delivered."""
    async with receiving(world.amt) as receiver, delivering(world.settings, world.redis):
        webhook = await world.webhook(receiver.url + "/data", error_url=receiver.url + "/errors")
        await ConnectService(Registry(world.redis, world.keys)).revoke(world.connections["bev"])
        subscription = Subscription(webhook.id, "bev", world.connections["bev"])
        revoked = events.new_event(subscription, USER, Reason.REVOKED, errors=[revoked_error()])
        later = world.event(webhook)
        await world.emit(revoked, later)
        (received,) = await receiver.wait_for(1)

        async def skipped() -> bool:
            logged = await last_deliveries(world.redis, world.keys, webhook.id, 10)
            return any(e["event_id"] == later.event_id and e["status"] == "skipped" for e in logged)

        assert await wait_until(skipped, timeout=15)
    assert received.path == "/errors"
    assert received.body["eventType"] == "VEHICLE_ERROR"
    assert received.body["data"]["errors"][0]["type"] == "CONNECTED_SERVICES_ACCOUNT"
    assert receiver.event_ids() == [revoked.event_id]
    assert json.loads(received.raw)["vehicleId"] == "bev"


async def test_a_sleeping_vehicle_makes_a_vehicle_error_to_the_error_url_as_well(world: World) -> None:
    """A read the vehicle answers ASLEEP is a VEHICLE_STATE error entry `{type, code}` in the state delivery, and
    one VEHICLE_ERROR (naming the signal) goes to the error URL; the same event emitted again (a redelivery)
    repeats both event ids, so a receiver can drop the duplicates."""
    await update_faults(world.redis, world.keys, "bev", lambda f: f.added(Fault(target=SOC, error="ASLEEP"), 0))
    async with receiving(world.amt) as receiver, delivering(world.settings, world.redis):
        webhook = await world.webhook(
            receiver.url + "/data", signals=[SOC, ODOMETER], error_url=receiver.url + "/errors"
        )
        event = world.event(webhook)
        await world.emit(event)
        first = await receiver.wait_for(2)
        await world.emit(event)
        again = await receiver.wait_for(4)
    state = next(r for r in first if r.path == "/data")
    error = next(r for r in first if r.path == "/errors")
    assert by_code(state.body)[SOC]["status"] == {
        "value": "ERROR",
        "error": {"type": "VEHICLE_STATE", "code": "ASLEEP"},
    }
    assert by_code(state.body)[ODOMETER]["status"] == {"value": "SUCCESS"}
    assert error.body["eventType"] == "VEHICLE_ERROR"
    assert [(e["type"], e["code"]) for e in error.body["data"]["errors"]] == [("VEHICLE_STATE", "ASLEEP")]
    assert [s["code"] for s in error.body["data"]["errors"][0]["signals"]] == [SOC]
    assert state.body["eventId"] == event.event_id
    assert error.body["eventId"] != event.event_id
    assert sorted(r.body["eventId"] for r in again[2:]) == sorted([state.body["eventId"], error.body["eventId"]])
