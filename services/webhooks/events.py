"""Making webhook events: each gets its `event_id` here, once, and goes on the webhook-events stream of its
vehicle's shard, where the delivery worker takes it (docs/webhooks.md)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from schemas.webhooks import EventType, Reason, WebhookEvent
from services.keyspace import Keys
from services.redis_client import Client
from services.webhooks.store import Subscription


def new_event(
    subscription: Subscription,
    user_id: str,
    reason: Reason,
    *,
    errors: Sequence[dict[str, Any]] = (),
) -> WebhookEvent:
    """A fresh event for one subscription: VEHICLE_ERROR when it carries errors, else VEHICLE_STATE."""
    return WebhookEvent(
        event_id=str(uuid.uuid4()),
        event_type=EventType.VEHICLE_ERROR if errors else EventType.VEHICLE_STATE,
        reason=reason,
        webhook_id=subscription.webhook_id,
        vehicle_id=subscription.vehicle_id,
        connection_id=subscription.connection_id,
        user_id=user_id,
        errors=tuple(errors),
        created_at=int(time.time() * 1000),
    )


async def emit(redis: Client, keys: Keys, events: Sequence[WebhookEvent]) -> list[str]:
    """XADD the events, each to its vehicle's shard, in their order; the entry ids."""
    if not events:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for event in events:
            stream = keys.shard_of_vehicle(event.vehicle_id).webhook_events
            pipe.xadd(stream, {"data": event.model_dump_json()})
        ids = await pipe.execute()
    return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]
