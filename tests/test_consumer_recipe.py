"""The contract's consumer recipe (docs/contract.md, "Reading decisions from your own service"), as fleetgate's own
consumers follow it: take over what dead consumers left pending, then delete them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from devtools.builders import make_request
from schemas.decision import decide
from schemas.outbound import encode_decision
from services.consumers import tail as tail_module
from services.consumers.audit import Auditor
from services.consumers.audit_store import AuditStore
from services.keyspace import Keys


class Collected:
    """A tail printer that keeps what it is given."""

    def __init__(self) -> None:
        self.request_ids: list[str] = []

    def decision(self, decision: dict[str, Any]) -> None:
        self.request_ids.append(decision["request_id"])

    def warning(self, message: str) -> None:
        raise AssertionError(message)


async def dead_consumers_holding(redis: Redis, stream: str, group: str, decisions: int) -> None:
    """`decisions` decisions on `stream`, all read and left pending by `dead-1`; `dead-2` holds none; both idle."""
    request = make_request("odometer-traveleddistance")
    for n in range(decisions):
        payload = encode_decision(decide(request, None, None), request, f"d-{n}", "2026-11-28T12:00:00Z")
        await redis.xadd(stream, {"data": payload.replace(b'"req-1"', f'"r{n}"'.encode())})
    await redis.xgroup_create(stream, group, id="0")
    await redis.xreadgroup(group, "dead-1", {stream: ">"}, count=decisions)
    await redis.xgroup_createconsumer(stream, group, "dead-2")
    await asyncio.sleep(0.1)  # idle past the take-over threshold the tests set (50 ms)


async def consumer_names(redis: Redis, stream: str, group: str) -> set[str]:
    return {c["name"].decode() for c in await redis.xinfo_consumers(stream, group)}


async def test_tail_group_takes_over_and_forgets_dead_consumers(
    redis: Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fleetgate tail --group` claims what a dead consumer left pending (shown first), deletes the dead consumers,
    then reads new entries: the recipe's steps 5 and 2."""
    monkeypatch.setattr(tail_module, "CLAIM_IDLE_MS", 50)
    await dead_consumers_holding(redis, keys.decisions, "billing", 2)
    printer = Collected()
    shown = tail_module.tail(redis, keys, tail_module.TailOptions(group="billing", count=2, block_ms=50), printer)
    assert (await shown).shown == 2
    assert printer.request_ids == ["r0", "r1"]
    assert not {"dead-1", "dead-2"} & await consumer_names(redis, keys.decisions, "billing")
    assert int((await redis.xpending(keys.decisions, "billing"))["pending"]) == 0


async def test_audit_takes_over_and_forgets_dead_consumers(redis: Redis, keys: Keys, tmp_path: Path) -> None:
    """`fleetgate audit run` stores what a dead audit consumer left pending and deletes the dead consumers."""
    await dead_consumers_holding(redis, keys.decisions, "audit", 3)
    store = AuditStore.open(tmp_path / "audit.db")
    try:
        stats = await Auditor(redis, keys, store, block_ms=10, claim_idle_ms=50).run(until_idle=True)
    finally:
        store.close()
    assert stats.decisions == 3
    assert not {"dead-1", "dead-2"} & await consumer_names(redis, keys.decisions, "audit")
    assert int((await redis.xpending(keys.decisions, "audit"))["pending"]) == 0
