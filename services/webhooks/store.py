"""Webhook definitions, their signing key and their subscriptions, as stored in Redis (docs/webhooks.md for the
keys). Each key is read and written alone (a Redis Cluster spreads them), so multi-key changes are ordered so that
a crash between two writes leaves nothing that delivers more than was asked: a subscription is removed from the
vehicle's index first, and a webhook's definition last.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from pydantic import ValidationError

from schemas.webhooks import Triggers, Webhook, WebhookError
from services.errors import NotFoundError, ServiceError
from services.keyspace import Keys
from services.redis_client import Client
from services.registry.apps import AppStore


class WebhookStoreError(ServiceError):
    """A webhook that cannot be created or changed as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """One vehicle subscribed to one webhook, through the connection that subscribed it."""

    webhook_id: str
    vehicle_id: str
    connection_id: str


@dataclass(frozen=True, slots=True)
class VerifyOutcome:
    """What the webhook's last VERIFY came to (`P:webhook:{id}:verify`): the reason is None when it verified."""

    verified: bool
    reason: str | None
    at: int
    """When, epoch ms."""
    http_status: int | None = None


class WebhookStore:
    """Webhooks of every application (`P:app:{app}:webhook:{id}`, `P:app:{app}:webhooks`, `P:webhook:{id}`), the
    signing key (`P:app:{app}:webhook-key`) and subscriptions (`P:webhook:{id}:subscribers`,
    `P:vehicle-webhooks:{vehicle}`)."""

    def __init__(self, redis: Client, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def create(
        self,
        app_id: str,
        *,
        management_token: str,
        name: str,
        callback_url: str,
        signals: Sequence[str],
        triggers: Triggers | None = None,
        error_callback_url: str | None = None,
    ) -> Webhook:
        """A new, unverified webhook of `app_id`. The management token must be the app's: it becomes the key every
        delivery is signed with (and VERIFY's answer is checked against)."""
        app = await AppStore(self.redis, self.keys).app_of_management_token(management_token)
        if app is None or app.id != app_id:
            raise WebhookStoreError(f"that is not the management token of application {app_id!r}")
        try:
            webhook = Webhook(
                id=str(uuid.uuid4()),
                app_id=app_id,
                name=name,
                callback_url=callback_url,
                error_callback_url=error_callback_url,
                signals=tuple(signals),
                triggers=triggers or Triggers(),
                created_at=int(time.time() * 1000),
            )
        except ValidationError as error:
            raise WebhookStoreError(_first_problem(error)) from None
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(self.keys.webhook_key(app_id), management_token)
            pipe.set(self.keys.webhook(app_id, webhook.id), webhook.model_dump_json())
            pipe.sadd(self.keys.app_webhooks(app_id), webhook.id)
            pipe.set(self.keys.webhook_app(webhook.id), app_id)
            await pipe.execute()
        return webhook

    async def get(self, webhook_id: str) -> Webhook:
        app_id = await self.redis.get(self.keys.webhook_app(webhook_id))
        record = None if app_id is None else await self.redis.get(self.keys.webhook(_text(app_id), webhook_id))
        if record is None:
            raise NotFoundError(f"unknown webhook {webhook_id!r} (fleetgate webhooks list)")
        return Webhook.model_validate_json(record)

    async def find(self, webhook_id: str) -> Webhook | None:
        """The webhook, or None for an id that is not one (or a string that is not an id at all)."""
        try:
            return await self.get(webhook_id)
        except NotFoundError:
            return None

    async def of_app(self, app_id: str) -> list[Webhook]:
        """The app's webhooks, oldest first."""
        ids = sorted(_text(i) for i in await self.redis.smembers(self.keys.app_webhooks(app_id)))
        records = await self.redis.mget([self.keys.webhook(app_id, i) for i in ids]) if ids else []
        found = [Webhook.model_validate_json(r) for r in records if r is not None]
        return sorted(found, key=lambda w: (w.created_at, w.id))

    async def set_verified(self, webhook: Webhook, verified: bool) -> Webhook:
        """The webhook with `verified` set, stored (only if it still exists: a webhook deleted meanwhile stays
        deleted)."""
        changed = webhook.model_copy(update={"verified": verified})
        await self.redis.set(self.keys.webhook(webhook.app_id, webhook.id), changed.model_dump_json(), xx=True)
        return changed

    async def record_verify(self, webhook: Webhook, outcome: VerifyOutcome) -> None:
        """Keep the outcome of a VERIFY, unless the webhook was deleted meanwhile (nothing is left behind)."""
        if await self.redis.exists(self.keys.webhook(webhook.app_id, webhook.id)):
            await self.redis.set(self.keys.webhook_verify(webhook.id), json.dumps(asdict(outcome)))

    async def last_verify(self, webhook_id: str) -> VerifyOutcome | None:
        """The outcome of the webhook's last VERIFY; None before the first (or for a record of an older format)."""
        record = await self.redis.get(self.keys.webhook_verify(webhook_id))
        try:
            return None if record is None else VerifyOutcome(**json.loads(record))
        except (ValueError, TypeError):
            return None

    async def signing_key(self, app_id: str) -> str | None:
        """The key an app's deliveries are signed with; None once the app has no webhook."""
        key = await self.redis.get(self.keys.webhook_key(app_id))
        return None if key is None else _text(key)

    async def delete(self, webhook_id: str) -> bool:
        """Forget a webhook and its subscriptions (undelivered events are then skipped). False if unknown."""
        webhook = await self.find(webhook_id)
        if webhook is None:
            return False
        async with self.redis.pipeline(transaction=False) as pipe:
            for vehicle_id in await self.subscribers(webhook_id):  # the vehicles' indexes first: triggers read them
                pipe.hdel(self.keys.vehicle_webhooks(vehicle_id), webhook_id)
            # One key a command: on a Redis Cluster they are in different slots.
            for key in (
                self.keys.webhook_subscribers(webhook_id),
                self.keys.webhook_deliveries(webhook_id),
                self.keys.webhook_verify(webhook_id),
            ):
                pipe.delete(key)
            pipe.srem(self.keys.app_webhooks(webhook.app_id), webhook_id)
            pipe.delete(self.keys.webhook(webhook.app_id, webhook_id))
            pipe.delete(self.keys.webhook_app(webhook_id))
            await pipe.execute()
        if not await self.redis.scard(self.keys.app_webhooks(webhook.app_id)):
            await self.redis.delete(self.keys.webhook_key(webhook.app_id))
        return True

    # --- subscriptions

    async def subscribe(self, webhook_id: str, vehicle_id: str, connection_id: str) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(self.keys.webhook_subscribers(webhook_id), vehicle_id, connection_id)
            pipe.hset(self.keys.vehicle_webhooks(vehicle_id), webhook_id, connection_id)
            await pipe.execute()

    async def unsubscribe(self, webhook_id: str, vehicle_id: str) -> bool:
        """False when the vehicle was not subscribed. The vehicle's index goes first: it is what triggers read."""
        removed = await self.redis.hdel(self.keys.vehicle_webhooks(vehicle_id), webhook_id)
        removed += await self.redis.hdel(self.keys.webhook_subscribers(webhook_id), vehicle_id)
        await self.redis.delete(self.keys.webhook_last(webhook_id, vehicle_id))
        return bool(removed)

    async def subscribers(self, webhook_id: str) -> dict[str, str]:
        """vehicle id -> connection id of every vehicle subscribed to the webhook."""
        found = await self.redis.hgetall(self.keys.webhook_subscribers(webhook_id))
        return {_text(k): _text(v) for k, v in found.items()}

    async def of_vehicle(self, vehicle_id: str) -> list[Subscription]:
        found = await self.redis.hgetall(self.keys.vehicle_webhooks(vehicle_id))
        return [Subscription(_text(w), vehicle_id, _text(c)) for w, c in sorted(found.items())]


def _first_problem(error: ValidationError) -> str:
    """The first thing wrong with a definition, in one line, as the CLI prints it."""
    first = error.errors()[0]
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, WebhookError):
        return str(cause)
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
