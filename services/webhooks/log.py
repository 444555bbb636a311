"""What became of each webhook event, where an operator looks: the webhook's delivery log and the dead letters.

- `P:webhook:{id}:deliveries`: a stream capped at about `FLEETGATE_WEBHOOK_LOG_MAXLEN` entries, one per delivery
  (an event can make two: its VEHICLE_STATE and the VEHICLE_ERROR its vehicle errors made), field `data` JSON:
  `event_id, vehicle_id, event_type, reason, status (delivered | dead | skipped), attempts, http_status,
  latency_ms, error, at` (epoch ms). `fleetgate webhooks deliveries ID` reads it.
- `P:webhooks:deadletter`: one entry per event given up on, field `data` JSON: the event (or the raw entry that
  was not one), the reason (the last error), the attempts, the first and last attempt times (epoch ms), and where
  it came from (shard, entry id).

Nothing here holds a secret: errors are the sender's one-line reasons, which never name a query string or a key.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from services.keyspace import Keys
from services.redis_client import Client

MAX_RAW = 65_536
"""The most of an unreadable entry a dead-letter record keeps."""


class Status(StrEnum):
    DELIVERED = "delivered"
    DEAD = "dead"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One line of a webhook's delivery log."""

    event_id: str
    vehicle_id: str
    event_type: str
    reason: str
    status: str
    attempts: int
    http_status: int | None
    latency_ms: float | None
    error: str | None
    at: int


def now_ms() -> int:
    return int(time.time() * 1000)


class Records:
    """Writes the delivery logs and the dead letters of one deployment."""

    def __init__(self, redis: Client, keys: Keys, log_maxlen: int) -> None:
        self.redis = redis
        self.keys = keys
        self.log_maxlen = log_maxlen

    async def log(self, webhook_id: str, entry: LogEntry) -> None:
        await self.redis.xadd(
            self.keys.webhook_deliveries(webhook_id),
            {"data": json.dumps(asdict(entry), separators=(",", ":"))},
            maxlen=self.log_maxlen,
            approximate=True,
        )

    async def dead_letter(
        self,
        *,
        reason: str,
        shard: int,
        entry_id: str,
        event: dict[str, Any] | None = None,
        raw: str | None = None,
        attempts: int = 0,
        first_attempt_at: int | None = None,
        last_attempt_at: int | None = None,
    ) -> None:
        """One record of an event given up on: `event` when it was one, else the `raw` entry that was not."""
        record: dict[str, Any] = {
            "v": 1,
            "reason": reason,
            "attempts": attempts,
            "first_attempt_at": first_attempt_at,
            "last_attempt_at": last_attempt_at,
            "shard": shard,
            "entry_id": entry_id,
            "dead_at": now_ms(),
        }
        if event is not None:
            record["event"] = event
            record["webhook_id"] = event.get("webhook_id")
            record["event_id"] = event.get("event_id")
        else:
            record["raw"] = (raw or "")[:MAX_RAW]
        await self.redis.xadd(self.keys.webhooks_deadletter, {"data": json.dumps(record, separators=(",", ":"))})


async def last_deliveries(redis: Client, keys: Keys, webhook_id: str, limit: int) -> list[dict[str, Any]]:
    """The webhook's last `limit` log entries, newest first (each with its stream entry id as `id`)."""
    found = await redis.xrevrange(keys.webhook_deliveries(webhook_id), count=limit)
    return [{"id": entry_id, **record} for entry_id, record in _records(found)]


async def dead_letters(redis: Client, keys: Keys, count: int = 1000) -> list[dict[str, Any]]:
    """The oldest `count` dead-letter records (for tests and inspection)."""
    return [record for _, record in _records(await redis.xrange(keys.webhooks_deadletter, count=count))]


async def dead_letters_of(
    redis: Client, keys: Keys, webhook_id: str, *, limit: int, scan: int = 2000
) -> tuple[list[dict[str, Any]], bool]:
    """The webhook's newest `limit` dead-letter records, newest first, found among the newest `scan` records of
    every webhook (the stream is shared and not indexed per webhook); and whether older records went unscanned."""
    found = await redis.xrevrange(keys.webhooks_deadletter, count=scan)
    mine = [record for _, record in _records(found) if record.get("webhook_id") == webhook_id]
    return mine[:limit], len(found or []) >= scan


def _records(entries: Any) -> list[tuple[str, dict[str, Any]]]:
    """(entry id, the JSON object of its `data`) of each entry; an entry that is not one is left out."""
    found = []
    for entry_id, fields in entries or []:
        data = (fields or {}).get(b"data") or (fields or {}).get("data")
        try:
            record = json.loads(data) if data is not None else None
        except ValueError:
            record = None
        if isinstance(record, dict):
            found.append((_text(entry_id), record))
    return found


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
