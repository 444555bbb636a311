"""What one webhook event delivers, decided when it is delivered (docs/webhooks.md, "Delivery").

`Builder.plan(event)` reads the webhook, its signing key and the vehicle, and for a VEHICLE_STATE event every
signal of the webhook through the pipeline, so the gatekeeper decides each against the connection as it is now:

- ALLOWED: the vehicle's value (units as the real payloads name them, times in epoch ms); a vehicle error
  (VEHICLE_STATE / ASLEEP, ...) is an ERROR entry `{type, code}` keeping the stale value, as Smartcar's;
- PERMISSION_DENIED: a PERMISSION entry, never data; VEHICLE_NOT_CAPABLE: COMPATIBILITY / VEHICLE_NOT_CAPABLE;
- UNAUTHORIZED for every signal (the connection is revoked): nothing is delivered (`Skip`);
- no answer to any read in time (the gatekeeper or the vehicles service is not running): `NotNow`, retried as a
  failed attempt; no answer to some reads only: UPSTREAM / NO_RESPONSE entries for those.

A CHANGE_CHECK event is delivered only if a `change_codes` signal differs (value or error) from what was last
delivered for the (webhook, vehicle) (`P:webhook:{id}:last:{vehicle}`, written after a 2xx), with one
SIGNAL_UPDATED trigger per changed signal. With `triggers.vehicle_error`, vehicle errors also make one VEHICLE_ERROR
delivery to the error URL, its `eventId` derived from the event's (uuid5), so a redelivery repeats it. A
VEHICLE_ERROR event (a revocation) is delivered as it is, no reads.

Skipped rather than delivered (and acknowledged): a deleted webhook (nothing logged: its log is gone with it), an
unverified one, an app without a signing key, a vehicle no longer subscribed (except the revocation's VEHICLE_ERROR,
which the unsubscribe that follows a revocation must not swallow), an unknown vehicle.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from redis.typing import FieldT

from schemas.catalog import Signal, get_catalog
from schemas.webhooks import (
    EventType,
    Reason,
    TriggerRef,
    Webhook,
    WebhookEvent,
    error_payload,
    signal_entry,
    signal_ref,
    state_payload,
)
from services.errors import NotFoundError
from services.http.api_v3.shapes import real_units
from services.http.pipeline import ALLOWED, Call, Pipeline, Reply
from services.keyspace import Keys
from services.redis_client import Client
from services.registry.apps import AppStore
from services.registry.store import Registry
from services.webhooks.store import WebhookStore

NO_RESPONSE = {"type": "UPSTREAM", "code": "NO_RESPONSE"}
NOT_VEHICLE_ERRORS = {"PERMISSION", "UPSTREAM"}
"""Error types that are not the vehicle's: no VEHICLE_ERROR delivery for them (nor for VEHICLE_NOT_CAPABLE)."""
ERROR_EVENT_NAMESPACE = uuid.UUID("5b0f4c53-9b1e-4a43-8a4c-6b1f0e3c9d21")

BodyMaker = Callable[[str, int], dict[str, Any]]
"""(delivery id, delivered at in epoch ms) -> the payload: each attempt has a new deliveryId, the same eventId."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One POST to make for an event."""

    url: str
    event_id: str
    event_type: str
    make_body: BodyMaker
    remember: dict[str, str] = field(default_factory=dict)
    """signal code -> canonical value, written to the webhook's `last` hash for the vehicle after a 2xx."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What an event delivers: one or two POSTs, signed with `key` (never logged)."""

    key: str = field(repr=False)
    outgoing: tuple[Outgoing, ...]


@dataclass(frozen=True, slots=True)
class Skip:
    """Nothing to deliver, for good: acknowledge. `logged` False when there is no log to write to (or no point:
    a change check that found no change)."""

    reason: str
    logged: bool = True
    status: str = "skipped"


@dataclass(frozen=True, slots=True)
class NotNow:
    """The payload cannot be built now (no answers from the pipeline): a failed attempt, retried."""

    reason: str


class Builder:
    """Builds the plan of an event from the registry, the webhook store and the pipeline's answers."""

    def __init__(self, redis: Client, keys: Keys, pipeline: Pipeline) -> None:
        self.redis = redis
        self.keys = keys
        self.pipeline = pipeline
        self.store = WebhookStore(redis, keys)
        self.registry = Registry(redis, keys)
        self.apps = AppStore(redis, keys)
        self.catalog = get_catalog()

    async def plan(self, event: WebhookEvent) -> Plan | Skip | NotNow:
        webhook = await self.store.find(event.webhook_id)
        if webhook is None:
            return Skip("the webhook was deleted", logged=False)
        if not webhook.verified:
            return Skip("the webhook is not verified")
        key = await self.store.signing_key(webhook.app_id)
        if key is None:
            return Skip("the application has no webhook signing key")
        subscribed = await self.redis.hget(self.keys.webhook_subscribers(webhook.id), event.vehicle_id)
        if subscribed is None and event.reason != Reason.REVOKED:
            return Skip("the vehicle is no longer subscribed")
        try:
            vehicle = await self._vehicle(webhook, event.vehicle_id)
        except NotFoundError as error:
            return Skip(str(error))
        if event.event_type == EventType.VEHICLE_ERROR:
            make = functools.partial(_error_body, webhook, event, vehicle)
            return Plan(key, (Outgoing(webhook.error_url, event.event_id, event.event_type.value, make),))
        connection_id = event.connection_id if subscribed is None else _text(subscribed)
        return await self._state(webhook, event, vehicle, key, connection_id)

    async def _vehicle(self, webhook: Webhook, vehicle_id: str) -> dict[str, Any]:
        """`data.vehicle`: the registry's record, and the app's mode."""
        vehicle = await self.registry.vehicle(vehicle_id)
        app = await self.apps.get(webhook.app_id)
        return {
            "id": vehicle.id,
            "make": vehicle.make,
            "model": vehicle.model,
            "year": vehicle.year,
            "mode": app.mode.value,
            "powertrainType": vehicle.powertrain.value,
        }

    async def _state(
        self, webhook: Webhook, event: WebhookEvent, vehicle: dict[str, Any], key: str, connection_id: str
    ) -> Plan | Skip | NotNow:
        signals = [self.catalog.signal(code) for code in webhook.signals]
        calls = [Call(connection_id, event.vehicle_id, "signal", s.code) for s in signals]
        replies = await self.pipeline.call_many(calls)
        if all(r.timed_out for r in replies):
            return NotNow(f"no answer to the signal reads within {self.pipeline.timeout_s:g} s")
        if all(r.decision is not None and r.decision.get("outcome") == "UNAUTHORIZED" for r in replies):
            return Skip("the connection is revoked or unknown: nothing is delivered for it")
        entries = [_entry(s, r) for s, r in zip(signals, replies, strict=True)]
        values = {s.code: _canonical(e) for s, e in zip(signals, entries, strict=True)}
        remember = {code: values[code] for code in webhook.change_codes}
        triggers = await self._triggers(webhook, event, remember)
        if not triggers:
            return Skip("no signal changed since the last delivery", logged=False, status="unchanged")

        def make_state(delivery_id: str, delivered_at: int) -> dict[str, Any]:
            return state_payload(
                webhook,
                event,
                vehicle=vehicle,
                signals=entries,
                triggers=triggers,
                delivery_id=delivery_id,
                delivered_at=delivered_at,
            )

        outgoing = [Outgoing(webhook.callback_url, event.event_id, EventType.VEHICLE_STATE.value, make_state, remember)]
        errors = _vehicle_errors(signals, replies) if webhook.triggers.vehicle_error else []
        if errors:
            error_event = event.model_copy(
                update={
                    "event_id": str(uuid.uuid5(ERROR_EVENT_NAMESPACE, event.event_id)),
                    "event_type": EventType.VEHICLE_ERROR,
                    "errors": tuple(errors),
                }
            )
            make_error = functools.partial(_error_body, webhook, error_event, vehicle)
            kind = EventType.VEHICLE_ERROR.value
            outgoing.append(Outgoing(webhook.error_url, error_event.event_id, kind, make_error))
        return Plan(key, tuple(outgoing))

    async def _triggers(self, webhook: Webhook, event: WebhookEvent, values: dict[str, str]) -> list[TriggerRef]:
        if event.reason != Reason.CHANGE_CHECK:
            return [TriggerRef(type=event.reason.value)]
        last = await self.redis.hgetall(self.keys.webhook_last(webhook.id, event.vehicle_id))
        before = {_text(k): _text(v) for k, v in last.items()}
        changed = [code for code, value in values.items() if before.get(code) != value]
        return [TriggerRef(type="SIGNAL_UPDATED", signal=signal_ref(self.catalog.signal(c))) for c in changed]

    async def remember(self, webhook_id: str, vehicle_id: str, values: Mapping[str, str]) -> None:
        """What was delivered, for the next change check."""
        if values:
            mapping: dict[FieldT, str] = dict(values.items())
            await self.redis.hset(self.keys.webhook_last(webhook_id, vehicle_id), mapping=mapping)


def _entry(signal: Signal, reply: Reply) -> dict[str, Any]:
    """One `data.signals[]` entry from the pipeline's reply (as the v3 API's `signal_of`, in webhook shape)."""
    if reply.timed_out:
        return signal_entry(signal, error=NO_RESPONSE)
    assert reply.decision is not None
    if reply.decision.get("outcome") != ALLOWED:
        return signal_entry(signal, error=reply.decision.get("error") or {"type": reply.decision.get("outcome")})
    response = reply.response or {}
    body = response.get("body")
    return signal_entry(
        signal,
        body=None if body is None else real_units(body),
        error=None if response.get("status") == "SUCCESS" else (response.get("error") or NO_RESPONSE),
        oem_updated_at=_epoch_ms(response.get("oem_updated_at")) if body is not None else None,
        retrieved_at=_epoch_ms(response.get("retrieved_at")) if body is not None else None,
    )


def _vehicle_errors(signals: Sequence[Signal], replies: Sequence[Reply]) -> list[dict[str, Any]]:
    """The VEHICLE_ERROR `errors[]` of the vehicle's own errors in the replies, one per (type, code) with the
    signals it hit."""
    grouped: dict[tuple[str, str | None], dict[str, Any]] = {}
    for signal, reply in zip(signals, replies, strict=True):
        if reply.timed_out or reply.decision is None or reply.decision.get("outcome") != ALLOWED:
            continue
        response = reply.response or {}
        error = response.get("error")
        if response.get("status") == "SUCCESS" or not isinstance(error, dict):
            continue
        kind, code = str(error.get("type")), error.get("code")
        if kind in NOT_VEHICLE_ERRORS or code == "VEHICLE_NOT_CAPABLE":
            continue
        found = grouped.setdefault(
            (kind, code),
            {
                "type": kind,
                "code": code,
                "state": "ERROR",
                "description": error.get("description"),
                "suggestedUserMessage": error.get("suggestedUserMessage"),
                "docURL": error.get("docURL"),
                "resolution": error.get("resolution") or {"type": None},
                "signals": [],
            },
        )
        found["signals"].append(signal_ref(signal))
    return list(grouped.values())


def _error_body(
    webhook: Webhook, event: WebhookEvent, vehicle: dict[str, Any], delivery_id: str, delivered_at: int
) -> dict[str, Any]:
    return error_payload(webhook, event, vehicle=vehicle, delivery_id=delivery_id, delivered_at=delivered_at)


def _canonical(entry: dict[str, Any]) -> str:
    """What a change check compares: the value and the status, not when it was read."""
    return json.dumps({"body": entry.get("body"), "status": entry.get("status")}, sort_keys=True)


def _epoch_ms(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
