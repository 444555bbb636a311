"""The load test's accounting consumers: one group of their own on each decisions and responses stream, NOACK (they
keep nothing pending), created at `$` when the load starts, handing what they read to the accountants."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import cast

from services.redis_client import Client
from simulator.accounting import Accountant
from simulator.response_accounting import ResponseAccountant

Entries = list[tuple[bytes, dict[bytes, bytes]]]
ALLOWED = "ALLOWED"


async def read_stream(
    redis: Client, stream: str, group: str, handle: Callable[[Entries, float], None], stop: asyncio.Event
) -> None:
    """Read `stream` as `group` until `stop`, handing each batch to `handle` with when it was read."""
    while not stop.is_set():
        response = await redis.xreadgroup(group, "accountant", {stream: ">"}, count=5000, block=100, noack=True)
        read_at = time.time()
        for _stream, entries in cast("list[tuple[bytes, Entries]]", response or []):
            handle(entries, read_at)


def account_decisions(
    entries: Entries,
    accountant: Accountant,
    read_at: float,
    samples: dict[str, str],
    responses: ResponseAccountant | None = None,
) -> None:
    """Hand decision entries to the accountants; keep the first decision of each outcome as a sample."""
    for _entry_id, fields in entries:
        data = fields.get(b"data", b"{}")
        decision = json.loads(data)
        outcome = str(decision.get("outcome"))
        request_id = str(decision.get("request_id"))
        accountant.on_decision(request_id, outcome, read_at)
        if outcome == ALLOWED and responses is not None:
            responses.on_allowed(request_id)
        if outcome not in samples:
            samples[outcome] = data.decode()


def account_responses(entries: Entries, responses: ResponseAccountant, read_at: float) -> None:
    """Hand response entries to the response accountant, in stream order."""
    for _entry_id, fields in entries:
        try:
            response = json.loads(fields.get(b"data", b"{}"))
        except ValueError:
            response = {}
        responses.on_response(response if isinstance(response, dict) else {}, read_at)
