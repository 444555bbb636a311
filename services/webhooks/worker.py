"""The webhook worker: the triggers that make events and the delivery worker that POSTs them, in one process with
one stop. `fleetgate webhooks run` runs it, and so does `fleetgate serve --with-workers`."""

from __future__ import annotations

import asyncio

from services.redis_client import Client
from services.settings import Settings
from services.webhooks.delivery import DeliveryWorker
from services.webhooks.triggers import TriggerService


class WebhookWorker:
    """Triggers and deliveries on one Redis client; `stop()` ends both (attempts in flight finish)."""

    def __init__(self, settings: Settings, redis: Client) -> None:
        self.redis = redis
        self.delivery = DeliveryWorker(settings, redis)
        self.triggers = TriggerService(settings, redis, consumer=self.delivery.holder)

    @property
    def stopping(self) -> asyncio.Event:
        return self.delivery.stopping

    def stop(self) -> None:
        self.delivery.stop()

    async def run(self) -> None:
        """Run both until stopped; if one ends on an error, the other is stopped and the error raised."""
        triggers = asyncio.create_task(self.triggers.run(self.stopping), name="webhook triggers")
        try:
            await self.delivery.run()
        finally:
            self.stop()
            await triggers
