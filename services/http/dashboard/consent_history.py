"""A connection's consent history: its `connection.*` events, read back from the connection-events stream.

Every change to a connection is written with its event, atomically, on the stream of the connection's shard
(services/registry/connect.py), so that stream alone holds its history. Nothing indexes events by connection: the
stream is read from a little before the connection was created (the record's time is the writer's clock, the
entry ids the server's), in chunks, and an entry is decoded only when its JSON names the connection (a byte search
first). Reading stops at the revocation, which is final. A stream trimmed past the creation lacks the first
events: `complete` says whether `connection.created` was found.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import cast

from pydantic import ValidationError

from schemas.connection import Connection
from schemas.messages import ConnectionEventMessage, ConnectionEventType
from services.registry.store import Registry

READ_COUNT = 1000
CLOCK_SKEW_MS = 5 * 60 * 1000
"""How far before the record's creation time the stream is read: the writer's clock may run ahead of Redis's."""


@dataclass(frozen=True, slots=True)
class ConsentHistory:
    events: list[ConnectionEventMessage]
    """Oldest first, as the stream holds them."""
    complete: bool
    """Whether the creation event is among them (a trimmed stream may have lost it)."""


async def consent_history(registry: Registry, connection: Connection) -> ConsentHistory:
    stream = registry.keys.shard_of_connection(connection.id).connection_events
    marker = f'"connection_id":"{connection.id}"'.encode()
    start = f"{max(0, round(connection.created_at.timestamp() * 1000) - CLOCK_SKEW_MS)}-0"
    events: list[ConnectionEventMessage] = []
    while True:
        entries = cast(
            "list[tuple[bytes, dict[bytes, bytes]]]",
            await registry.redis.xrange(stream, min=start, max="+", count=READ_COUNT),
        )
        for _entry_id, fields in entries:
            data = fields.get(b"data", b"")
            if marker not in data:
                continue
            with contextlib.suppress(ValidationError):  # not an event of the contract: not part of its history
                event = ConnectionEventMessage.model_validate_json(data)
                if event.connection_id == connection.id:
                    events.append(event)
        if len(entries) < READ_COUNT or (events and events[-1].type is ConnectionEventType.REVOKED):
            break
        start = "(" + entries[-1][0].decode()  # exclusive: after the last entry read
    complete = bool(events) and events[0].type is ConnectionEventType.CREATED
    return ConsentHistory(events, complete)
