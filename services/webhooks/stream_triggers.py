"""What the connection-events and responses streams trigger: one batch of their entries in, webhook events out.

- `connection.revoked`: every subscription held through that connection gets one VEHICLE_ERROR event (reason
  REVOKED, Smartcar's CONNECTED_SERVICES_ACCOUNT / PERMISSION) and is removed, so nothing more is made for it.
  Only a verified webhook whose `triggers.vehicle_error` is on gets the event; every one loses the subscription.
- a SUCCESS response to a command: the vehicle's state may have changed, so every subscription of that vehicle to
  a verified webhook with change triggers gets one CHANGE_CHECK event, however many commands of the batch touched
  the vehicle (the delivery worker compares the signals with what it last delivered: no change, no delivery).
  Reads change nothing and trigger nothing.

A batch is handled in three steps, in this order: emit its events, remove the revoked subscriptions, XACK its
entries (the caller's). A crash in between leaves the batch pending: read again, it makes the same events with the
same ids (audience.stable_event) as long as the subscriptions are still there, and nothing once they are gone
(their events were emitted before they went). An entry that is not a readable message is logged, counted and
acknowledged with the others.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError
from pydantic_core import from_json

from schemas.errors import describe_validation_error
from schemas.messages import ConnectionEventMessage, ConnectionEventType
from schemas.webhooks import Reason, WebhookEvent, revoked_error
from services.keyspace import ShardKeys
from services.webhooks.audience import Audience, stable_event
from services.webhooks.events import emit
from services.webhooks.store import Subscription, WebhookStore

log = logging.getLogger("fleetgate.webhooks.triggers")

EMIT_CHUNK = 1000
"""Events XADDed per pipeline."""


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One entry read from a shard's connection-events or responses stream."""

    stream: str
    entry_id: str
    fields: dict[bytes, bytes]


@dataclass
class Causes:
    """What one batch asks for: the revocations, and per vehicle changed by a command the last entry that said so."""

    revocations: list[ConnectionEventMessage] = field(default_factory=list)
    changed: dict[str, StreamEntry] = field(default_factory=dict)
    unreadable: int = 0


class StreamTriggers:
    """Turns batches of one shard's connection events and responses into webhook events."""

    def __init__(self, audience: Audience, store: WebhookStore) -> None:
        self.audience = audience
        self.store = store

    async def handle(self, shard: ShardKeys, entries: Sequence[StreamEntry]) -> tuple[int, int]:
        """Emit the batch's events and remove its revoked subscriptions (not XACK: the caller's, after this);
        (events emitted, unreadable entries)."""
        causes = read_causes(shard, entries)
        revoked = await self._revoked(causes.revocations)
        events = [event for event, _ in revoked if event is not None]
        events += await self._change_checks(causes.changed)
        for start in range(0, len(events), EMIT_CHUNK):
            await emit(self.audience.redis, self.audience.keys, events[start : start + EMIT_CHUNK])
        for _, subscription in revoked:
            await self.store.unsubscribe(subscription.webhook_id, subscription.vehicle_id)
        return len(events), causes.unreadable

    async def _revoked(
        self, revocations: Sequence[ConnectionEventMessage]
    ) -> list[tuple[WebhookEvent | None, Subscription]]:
        """Each subscription of a revoked connection, with its revocation event (None: its webhook gets none)."""
        found: list[tuple[WebhookEvent | None, Subscription]] = []
        for revocation in revocations:
            held = [
                s
                for s in await self.audience.subscriptions_of_vehicles([revocation.vehicle_id])
                if s.connection_id == revocation.connection_id
            ]
            if not held:
                continue
            webhooks = await self.audience.webhooks(s.webhook_id for s in held)
            user_id = await self.audience.user_of(revocation.connection_id, revocation.user_id)
            for subscription in held:
                webhook = webhooks.get(subscription.webhook_id)
                wanted = webhook is not None and webhook.verified and webhook.triggers.vehicle_error
                event = (
                    stable_event(
                        subscription, user_id, Reason.REVOKED, [revocation.connection_id], errors=[revoked_error()]
                    )
                    if wanted
                    else None
                )
                found.append((event, subscription))
        return found

    async def _change_checks(self, changed: dict[str, StreamEntry]) -> list[WebhookEvent]:
        subscriptions = await self.audience.subscriptions_of_vehicles(changed)
        if not subscriptions:
            return []
        webhooks = await self.audience.webhooks(s.webhook_id for s in subscriptions)
        wanted = [
            s for s in subscriptions if (w := webhooks.get(s.webhook_id)) is not None and w.verified and w.change_codes
        ]
        users = await self.audience.active_users(s.connection_id for s in wanted)
        events = []
        for subscription in wanted:
            user_id = users.get(subscription.connection_id)
            if user_id is None:
                continue  # revoked meanwhile: its revocation event is the last it gets
            cause = changed[subscription.vehicle_id]
            events.append(stable_event(subscription, user_id, Reason.CHANGE_CHECK, [cause.stream, cause.entry_id]))
        return events


def read_causes(shard: ShardKeys, entries: Sequence[StreamEntry]) -> Causes:
    """The revocations and command changes among a batch's entries; the rest is ignored, unreadable ones logged."""
    causes = Causes()
    for entry in entries:
        if not entry.fields:
            continue  # deleted from the stream while pending: nothing left to read
        try:
            if entry.stream == shard.connection_events:
                event = ConnectionEventMessage.model_validate_json(_data(entry))
                if event.type is ConnectionEventType.REVOKED:
                    causes.revocations.append(event)
            elif entry.stream == shard.responses:
                vehicle_id = _changed_vehicle(_data(entry))
                if vehicle_id is not None:
                    causes.changed[vehicle_id] = entry
        except ValueError as error:  # pydantic's ValidationError and a JSON error are ValueErrors
            causes.unreadable += 1
            reason = describe_validation_error(error) if isinstance(error, ValidationError) else str(error)
            one_line = reason.replace("\n", "; ")[:300]
            log.warning("%s entry %s is unreadable, skipped: %s", entry.stream, entry.entry_id, one_line)
    return causes


def _data(entry: StreamEntry) -> bytes:
    data = entry.fields.get(b"data")
    if data is None:
        raise ValueError("no `data` field")
    return data


def _changed_vehicle(data: bytes) -> str | None:
    """The vehicle a response says a command succeeded on; None for anything else. Responses are the busiest
    stream the triggers read: only the three fields that matter are checked, not the whole message."""
    response = from_json(data)
    if not isinstance(response, dict):
        raise ValueError("not a JSON object")
    vehicle_id, kind, status = response.get("vehicle_id"), response.get("kind"), response.get("status")
    if not isinstance(vehicle_id, str) or not vehicle_id or not isinstance(kind, str):
        raise ValueError("no vehicle_id or kind")
    return vehicle_id if kind == "command" and status == "SUCCESS" else None
