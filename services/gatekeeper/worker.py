"""The gatekeeper worker: read a batch from the consumer group, decide it, publish and acknowledge it in one script.

    XREADGROUP (COUNT batch_size) -> read_entry() -> cache.load() (one MGET) -> decide() -> Decision.encode()
    -> DECIDE script (dedupe + XADD decisions + XACK, one round trip)

Per batch that is three round trips whatever its size. An entry whose processing raises is left pending; the
reclaim loop (every worker runs one) claims entries idle longer than `min_idle_ms`, from dead workers or
failed attempts, and sends those delivered more than `max_deliveries` times to the dead-letter stream.

With several shards (`FLEETGATE_SHARDS`) a worker runs all of that for each shard it consumes (all of them,
or those of `FLEETGATE_WORKER_SHARDS`); each shard's commands touch only keys under its own hash tag.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import math
import os
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from redis.exceptions import ResponseError

from schemas.decision import decide, rfc3339
from schemas.messages import DeadLetterMessage, RequestMessage
from schemas.problems import Outcome
from services.gatekeeper import metrics
from services.gatekeeper.cache import Lookups, RegistryCache
from services.gatekeeper.intake import Rejection, read_entry
from services.gatekeeper.scripts import DEAD_LETTER, DECIDE
from services.gatekeeper.wire import Entry, Wire, WireScript, wire_for
from services.keyspace import ShardKeys
from services.redis_client import REDIS_ERRORS, Client
from services.registry.store import Registry
from services.settings import Settings

log = logging.getLogger("fleetgate.gatekeeper")


def consumer_name() -> str:
    """Unique per process: host, pid and a random tag (a restarted pid must not inherit a dead PEL)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


@dataclass(slots=True)
class Shard:
    """One shard this worker consumes: its keys, and the hot path's wire to the server that holds them."""

    keys: ShardKeys
    wire: Wire
    decide: WireScript
    reclaim_cursor: bytes | str = "0-0"


class Gatekeeper:
    def __init__(self, settings: Settings, redis: Client, consumer: str | None = None) -> None:
        self.settings = settings
        self.redis = redis
        self.keys = settings.keys
        self.consumer = consumer or consumer_name()
        self.cache = RegistryCache(Registry(redis, self.keys), settings.cache_ttl_s)
        self.shards = [self._shard(self.keys.shard(index)) for index in settings.worker_shard_numbers]
        self._dead_letter_script = redis.register_script(DEAD_LETTER)
        self._ids = itertools.count()
        self._tag = secrets.token_hex(4)
        self._failures: dict[tuple[str, bytes], str] = {}  # (requests stream, entry id): the last error
        self.stopping = asyncio.Event()

    def _shard(self, keys: ShardKeys) -> Shard:
        wire = wire_for(self.redis, keys.requests)
        return Shard(keys, wire, WireScript(wire, DECIDE))

    async def ensure_group(self) -> None:
        """Create each shard's consumer group at id 0 (so a backlog written before any worker started is decided)."""
        for shard in self.shards:
            try:
                await self.redis.xgroup_create(shard.keys.requests, self.settings.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def stop(self) -> None:
        """Finish the batch in hand, acknowledge it, and return from consume()."""
        self.stopping.set()

    async def consume(self) -> None:
        """Read and decide batches until stop(), `batches_in_flight` at a time (one read, decide, script loop each).

        Several loops keep both Python and Redis busy: while one batch's script runs server-side, the next
        batch is being decided. Decisions of one worker are thus not in request order (nor are they across
        workers). The loops are spread over the shards, at least one each. A Redis outage is waited out with
        backoff, never fatal.
        """
        per_shard = math.ceil(self.settings.batches_in_flight / len(self.shards))
        await asyncio.gather(*(self._consume_loop(shard) for shard in self.shards for _ in range(per_shard)))

    async def _consume_loop(self, shard: Shard) -> None:
        failures = 0
        while not self.stopping.is_set():
            try:
                entries = await shard.wire.read_group(
                    shard.keys.requests,
                    self.settings.group,
                    self.consumer,
                    self.settings.batch_size,
                    self.settings.block_ms,
                )
                if entries:
                    await self.process(entries, shard)
                failures = 0
            except REDIS_ERRORS as exc:
                if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                    # The stream or group is gone (a Redis restarted without persistence, a FLUSHALL): create
                    # it again at 0, so whatever is written from now on is decided instead of failing forever.
                    log.warning("consumer group %s missing; creating it again", self.settings.group)
                    with contextlib.suppress(*REDIS_ERRORS):
                        await self.ensure_group()
                    continue
                failures += 1
                delay = min(0.05 * 2**failures, 5.0)
                log.warning("redis error on %s, retrying in %.2fs: %s", shard.keys.requests, delay, exc)
                await asyncio.sleep(delay)
                with contextlib.suppress(*REDIS_ERRORS):
                    await shard.wire.refresh()

    async def process(self, entries: list[Entry], shard: Shard | None = None) -> int:
        """Decide, publish and acknowledge a batch of one shard (the only one if not named); returns how many
        decisions were published (not duplicates)."""
        shard = shard or self._only_shard
        started = time.perf_counter()
        intakes = [
            (entry_id, read_entry(entry_id, fields, self.settings.max_payload_bytes)) for entry_id, fields in entries
        ]
        lookups = await self.cache.load(i for _, i in intakes if isinstance(i, RequestMessage))
        decided_at = rfc3339(datetime.now(UTC))
        args: list[Any] = [self.settings.group, shard.keys.dedupe_prefix, self.settings.dedupe_window_s]
        args.append(self.settings.decisions_maxlen)
        outcomes: list[str] = []
        for entry_id, intake in intakes:
            try:
                outcome, triple = self._decided(shard, entry_id, intake, decided_at, lookups)
            except Exception as exc:  # one bad entry must not stop the batch: it stays pending, to be retried
                self._failures[shard.keys.requests, entry_id] = f"{type(exc).__name__}: {exc}"
                log.exception("entry %s failed; left pending for retry", entry_id.decode())
                continue
            args += triple
            outcomes.append(outcome)
        published = ""
        if outcomes:
            flags = await shard.decide(keys=[shard.keys.decisions, shard.keys.requests], args=args)
            published = flags.decode() if isinstance(flags, bytes) else str(flags)
        seconds = time.perf_counter() - started
        metrics.observe_batch(
            len(entries), outcomes, published, seconds=seconds, cache_hits=lookups.hits, cache_misses=lookups.misses
        )
        return published.count("1")

    @property
    def _only_shard(self) -> Shard:
        if len(self.shards) != 1:
            raise ValueError(f"this worker consumes {len(self.shards)} shards: name the batch's shard")
        return self.shards[0]

    def _decided(
        self, shard: Shard, entry_id: bytes, intake: RequestMessage | Rejection, decided_at: str, lookups: Lookups
    ) -> tuple[Outcome, tuple[bytes, str, bytes]]:
        """The outcome and the DECIDE script's arguments for one entry."""
        decision_id = f"{self._tag}-{next(self._ids)}"
        entry = entry_id.decode()
        if isinstance(intake, Rejection):
            payload = intake.encode(decision_id, decided_at, entry)
            outcome = Outcome.REJECTED
        else:
            connection = lookups.connections[intake.connection_id]
            decision = decide(intake, connection, lookups.vehicles[intake.vehicle_id])
            payload = decision.encode(intake, decision_id, decided_at, entry)
            outcome = decision.outcome  # a StrEnum: already its value, without the enum's slow `.value`
        if self._failures:
            self._failures.pop((shard.keys.requests, entry_id), None)
        return outcome, (entry_id, intake.request_id, payload)

    async def reclaim(self) -> int:
        """Claim each shard's entries idle past min_idle_ms (XAUTOCLAIM); dead-letter those delivered too often,
        decide the rest. Returns how many entries were claimed."""
        claimed = 0
        for shard in self.shards:
            claimed += await self._reclaim_shard(shard)
        return claimed

    async def _reclaim_shard(self, shard: Shard) -> int:
        requests = shard.keys.requests
        response = await self.redis.xautoclaim(
            requests,
            self.settings.group,
            self.consumer,
            min_idle_time=self.settings.min_idle_ms,
            start_id=shard.reclaim_cursor,
            count=self.settings.batch_size,
        )
        shard.reclaim_cursor, claimed, deleted = response[0], response[1], response[2]
        claimed = [(entry_id, fields) for entry_id, fields in claimed if fields is not None]
        if not claimed and not deleted:
            return 0
        deliveries: dict[bytes, int] = {}
        if claimed:
            pending = await self.redis.xpending_range(
                requests,
                self.settings.group,
                min=claimed[0][0],
                max=claimed[-1][0],
                count=len(claimed),
                consumername=self.consumer,
            )
            deliveries = {cast(bytes, p["message_id"]): int(p["times_delivered"]) for p in pending}
        metrics.REDELIVERIES.inc(len(claimed))
        limit = self.settings.max_deliveries
        dead = [(i, f) for i, f in claimed if deliveries.get(i, 1) > limit]
        dead += [(i, {}) for i in deleted]  # deleted from the stream while pending: nothing left to decide
        if dead:
            await self._dead_letter(shard, dead, deliveries)
        retry = [(i, f) for i, f in claimed if deliveries.get(i, 1) <= limit]
        if retry:
            await self.process(retry, shard)
        return len(claimed) + len(deleted)

    async def _dead_letter(self, shard: Shard, dead: list[Entry], deliveries: dict[bytes, int]) -> None:
        now = datetime.now(UTC)
        args: list[Any] = [self.settings.group, self.settings.deadletter_maxlen]
        for entry_id, fields in dead:
            reason = self._failures.pop(
                (shard.keys.requests, entry_id), "not decided by any worker" if fields else "deleted while pending"
            )
            letter = DeadLetter(shard.keys.requests, entry_id, fields, deliveries.get(entry_id, 0), reason)
            args += [entry_id, letter.encode(now)]
        await self._dead_letter_script(keys=[shard.keys.deadletter, shard.keys.requests], args=args)
        metrics.DEAD_LETTERS.inc(len(dead))
        log.warning("dead-lettered %d entries from %s", len(dead), shard.keys.requests)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    stream: str
    entry_id: bytes
    fields: dict[bytes, bytes]
    deliveries: int
    reason: str

    def encode(self, now: datetime) -> bytes:
        text: dict[str, str] = {}
        binary: dict[str, str] = {}
        for name, value in self.fields.items():
            key = name.decode(errors="backslashreplace")
            try:
                text[key] = value.decode()
            except UnicodeDecodeError:
                binary[key] = base64.b64encode(value).decode()
        return DeadLetterMessage(
            entry_id=self.entry_id.decode(),
            stream=self.stream,
            fields=text,
            binary_fields=binary,
            reason=f"delivered {self.deliveries} times; last failure: {self.reason}",
            deliveries=self.deliveries,
            dead_at=now,
        ).encode()
