"""Decisions idle in the vehicles group past `min_idle_ms` (their consumer died, or stalls): claimed for this
service, dead-lettered once delivered more than `max_deliveries` times, the rest handed back to be answered."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

from schemas.outbound import encode_dead_letter
from services.gatekeeper.resp import Entry
from services.gatekeeper.scripts import DEAD_LETTER
from services.keyspace import ShardKeys
from services.redis_client import Client
from services.settings import Settings
from simulator.vehicles import metrics

log = logging.getLogger("fleetgate.vehicles")


class Reclaim:
    """One service's reclaiming, shard by shard, each from where its last pass stopped (XAUTOCLAIM's cursor)."""

    def __init__(self, redis: Client, settings: Settings, consumer: str) -> None:
        self.redis = redis
        self.settings = settings
        self.consumer = consumer
        self._cursors: dict[str, bytes | str] = {}
        self._dead_letter = redis.register_script(DEAD_LETTER)

    async def claim(self, shard: ShardKeys, held: Callable[[bytes], bool]) -> tuple[int, list[Entry]]:
        """Claim the shard's idle decisions: how many, and those to answer again (not dead-lettered, not `held`
        by this service already: a delayed decision whose hold lapsed)."""
        group, stream = self.settings.vehicles_group, shard.decisions
        reply = await self.redis.xautoclaim(
            stream,
            group,
            self.consumer,
            min_idle_time=self.settings.min_idle_ms,
            start_id=self._cursors.get(stream, "0-0"),
            count=self.settings.batch_size,
        )
        self._cursors[stream] = reply[0]
        claimed: list[Entry] = [(i, f) for i, f in reply[1] if f is not None and not held(i)]
        if not claimed:
            return 0, []
        metrics.REDELIVERIES.inc(len(claimed))
        pending = await self.redis.xpending_range(
            stream, group, min=claimed[0][0], max=claimed[-1][0], count=len(claimed), consumername=self.consumer
        )
        deliveries = {cast(bytes, p["message_id"]): int(p["times_delivered"]) for p in pending}
        dead = [(i, f) for i, f in claimed if deliveries.get(i, 1) > self.settings.max_deliveries]
        if dead:
            await self._send_to_dead_letters(shard, dead, deliveries)
        return len(claimed), [(i, f) for i, f in claimed if deliveries.get(i, 1) <= self.settings.max_deliveries]

    async def _send_to_dead_letters(self, shard: ShardKeys, dead: list[Entry], deliveries: dict[bytes, int]) -> None:
        now = datetime.now(UTC)
        args: list[Any] = [self.settings.vehicles_group, self.settings.deadletter_maxlen]
        for entry_id, fields in dead:
            times = deliveries.get(entry_id, 0)
            reason = "not answered by any vehicles service"
            args += (
                entry_id,
                encode_dead_letter(shard.decisions, entry_id, fields, deliveries=times, reason=reason, now=now),
            )
        await self._dead_letter(keys=[shard.deadletter, shard.decisions, shard.failures], args=args)
        metrics.DEAD_LETTERS.inc(len(dead))
        log.warning("dead-lettered %d decisions from %s", len(dead), shard.decisions)
