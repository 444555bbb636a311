"""Who gets a trigger's events: subscriptions with their webhook and the user of their connection, read in a
constant number of round trips however many there are; and the stable event ids the triggers give them.

Every trigger may run twice over the same cause (a batch re-read after a crash before its XACK, a poll or
schedule step repeated by the process that took the lease over), so an event's id is derived from its cause
(uuid5), never drawn at random: a repeat carries the same `eventId`, which the receiver dedupes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from schemas.application import DEFAULT_APP_ID
from schemas.connection import ConnectionStatus
from schemas.webhooks import Reason, Webhook, WebhookEvent
from services.keyspace import Keys
from services.redis_client import Client, get_many
from services.registry.records import decode_connection
from services.webhooks.events import new_event
from services.webhooks.store import Subscription

log = logging.getLogger("fleetgate.webhooks.triggers")

EVENT_NAMESPACE = uuid.UUID("6f1c2a9e-5d0b-4c57-9a43-2f8e7b1d0c64")
"""The uuid5 namespace of trigger-made event ids (fleetgate's own, fixed forever)."""

NO_USER = ""
"""The user id of a connection made without a Connect user (the command line, the simulator's owners): the API's
connections always have one, so only such test set-ups see it."""


def stable_event(
    subscription: Subscription,
    user_id: str,
    reason: Reason,
    cause: Sequence[str],
    *,
    errors: Sequence[dict[str, Any]] = (),
) -> WebhookEvent:
    """An event whose `event_id` is fixed by the subscription, the reason and `cause`: made again for the same
    cause, it is the same event."""
    event = new_event(subscription, user_id, reason, errors=errors)
    name = "|".join((subscription.webhook_id, subscription.vehicle_id, reason.value, *cause))
    return event.model_copy(update={"event_id": str(uuid.uuid5(EVENT_NAMESPACE, name))})


@dataclass(frozen=True, slots=True)
class Audience:
    """The registry and webhook keys the triggers read."""

    redis: Client
    keys: Keys

    async def webhooks(self, webhook_ids: Iterable[str]) -> dict[str, Webhook]:
        """The webhooks of these ids that exist (two round trips); a record that does not parse is logged and
        left out, never raised: one bad definition must not stop the events of the others."""
        ids = sorted(set(webhook_ids))
        apps = await get_many(self.redis, [self.keys.webhook_app(i) for i in ids])
        known = [(i, _text(a)) for i, a in zip(ids, apps, strict=True) if a is not None]
        records = await get_many(self.redis, [self.keys.webhook(a, i) for i, a in known])
        found = {}
        for (webhook_id, _), record in zip(known, records, strict=True):
            if record is None:
                continue
            try:
                found[webhook_id] = Webhook.model_validate_json(record)
            except ValidationError as error:
                log.error("webhook %s has an unreadable definition, skipped: %s", webhook_id, error.errors()[0])
        return found

    async def of_apps(self) -> list[Webhook]:
        """Every application's webhooks: two round trips when there are none (the apps, then their id sets)."""
        apps = [_text(a) for a in await self.redis.zrange(self.keys.apps, 0, -1) if isinstance(a, bytes | str)]
        apps = [DEFAULT_APP_ID, *(a for a in apps if a != DEFAULT_APP_ID)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for app_id in apps:
                pipe.smembers(self.keys.app_webhooks(app_id))
            sets = await pipe.execute()
        ids = [_text(i) for members in sets for i in members]
        return list((await self.webhooks(ids)).values()) if ids else []

    async def subscriptions_of_vehicles(self, vehicle_ids: Iterable[str]) -> list[Subscription]:
        """Every subscription of these vehicles (one round trip)."""
        vehicles = sorted(set(vehicle_ids))
        if not vehicles:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for vehicle_id in vehicles:
                pipe.hgetall(self.keys.vehicle_webhooks(vehicle_id))
            found = await pipe.execute()
        return [
            Subscription(_text(w), vehicle_id, _text(c))
            for vehicle_id, subscribed in zip(vehicles, found, strict=True)
            for w, c in sorted(subscribed.items())
        ]

    async def subscriptions_of_webhooks(self, webhook_ids: Iterable[str]) -> list[Subscription]:
        """Every subscription of these webhooks (one round trip)."""
        ids = sorted(set(webhook_ids))
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for webhook_id in ids:
                pipe.hgetall(self.keys.webhook_subscribers(webhook_id))
            found = await pipe.execute()
        return [
            Subscription(webhook_id, _text(v), _text(c))
            for webhook_id, subscribers in zip(ids, found, strict=True)
            for v, c in sorted(subscribers.items())
        ]

    async def active_users(self, connection_ids: Iterable[str]) -> dict[str, str]:
        """connection id -> its user id, for the connections that exist and are active (one round trip per
        server); a revoked or unknown connection gets no event but its revocation's."""
        ids = sorted(set(connection_ids))
        records = await get_many(self.redis, [self.keys.connection(c) for c in ids])
        users = {}
        for connection_id, record in zip(ids, records, strict=True):
            if record is None:
                continue
            try:
                connection = decode_connection(connection_id, record)
            except (ValueError, KeyError) as error:
                log.error("connection %s has an unreadable record, skipped: %s", connection_id, error)
                continue
            if connection.status is ConnectionStatus.ACTIVE:
                users[connection_id] = connection.user_id or NO_USER
        return users

    async def user_of(self, connection_id: str, fallback: str | None) -> str:
        """The user of a connection, active or revoked: from its record, else `fallback` (what an event said)."""
        record = await self.redis.get(self.keys.connection(connection_id))
        if record is not None:
            try:
                user_id = decode_connection(connection_id, record).user_id
            except (ValueError, KeyError):
                user_id = None
            if user_id:
                return user_id
        return fallback or NO_USER


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
