"""The gatekeeper worker: read a batch from the consumer group, decide it, publish and acknowledge it in one script.

    XREADGROUP (COUNT batch_size) -> read_entry() -> cache.load() (one MGET) -> decide() -> Decision.encode()
    -> DECIDE script (dedupe + XADD decisions + XACK, one round trip)

Per batch that is three round trips whatever its size. An entry whose processing raises is left pending; the
reclaim loop (every worker runs one) claims entries idle longer than `min_idle_ms`, from dead workers or
failed attempts, and sends those delivered more than `max_deliveries` times to the dead-letter stream.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from schemas.decision import decide, rfc3339
from schemas.messages import DeadLetterMessage, RequestMessage
from schemas.problems import Outcome
from services.gatekeeper import metrics
from services.gatekeeper.cache import Lookups, RegistryCache
from services.gatekeeper.intake import Rejection, read_entry
from services.gatekeeper.scripts import DEAD_LETTER, DECIDE
from services.gatekeeper.wire import Entry, Wire, WireScript
from services.registry.layout import Keys
from services.registry.store import Registry
from services.settings import Settings

log = logging.getLogger("fleetgate.gatekeeper")


def consumer_name() -> str:
    """Unique per process: host, pid and a random tag (a restarted pid must not inherit a dead PEL)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


class Gatekeeper:
    def __init__(self, settings: Settings, redis: Redis, consumer: str | None = None) -> None:
        self.settings = settings
        self.redis = redis
        self.keys = Keys(settings.key_prefix)
        self.consumer = consumer or consumer_name()
        self.cache = RegistryCache(Registry(redis, self.keys), settings.cache_ttl_s)
        self.wire = Wire(redis)
        self._decide_script = WireScript(self.wire, DECIDE)
        self._dead_letter_script = redis.register_script(DEAD_LETTER)
        self._ids = itertools.count()
        self._tag = secrets.token_hex(4)
        self._failures: dict[bytes, str] = {}
        self._reclaim_cursor: bytes | str = "0-0"
        self.stopping = asyncio.Event()

    async def ensure_group(self) -> None:
        """Create the consumer group at id 0 (so a backlog written before any worker started is decided)."""
        try:
            await self.redis.xgroup_create(self.keys.requests, self.settings.group, id="0", mkstream=True)
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
        workers). A Redis outage is waited out with backoff, never fatal.
        """
        await asyncio.gather(*(self._consume_loop() for _ in range(self.settings.batches_in_flight)))

    async def _consume_loop(self) -> None:
        failures = 0
        while not self.stopping.is_set():
            try:
                entries = await self.wire.read_group(
                    self.keys.requests,
                    self.settings.group,
                    self.consumer,
                    self.settings.batch_size,
                    self.settings.block_ms,
                )
                if entries:
                    await self.process(entries)
                failures = 0
            except RedisError as exc:
                if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                    # The stream or group is gone (a Redis restarted without persistence, a FLUSHALL): create
                    # it again at 0, so whatever is written from now on is decided instead of failing forever.
                    log.warning("consumer group %s missing; creating it again", self.settings.group)
                    with contextlib.suppress(RedisError):
                        await self.ensure_group()
                    continue
                failures += 1
                delay = min(0.05 * 2**failures, 5.0)
                log.warning("redis error, retrying in %.2fs: %s", delay, exc)
                await asyncio.sleep(delay)

    async def process(self, entries: list[Entry]) -> int:
        """Decide, publish and acknowledge a batch; returns how many decisions were published (not duplicates)."""
        started = time.perf_counter()
        intakes = [
            (entry_id, read_entry(entry_id, fields, self.settings.max_payload_bytes)) for entry_id, fields in entries
        ]
        lookups = await self.cache.load(i for _, i in intakes if isinstance(i, RequestMessage))
        decided_at = rfc3339(datetime.now(UTC))
        args: list[Any] = [self.settings.group, self.keys.dedupe_prefix, self.settings.dedupe_window_s]
        args.append(self.settings.decisions_maxlen)
        outcomes: list[str] = []
        for entry_id, intake in intakes:
            try:
                outcome, triple = self._decided(entry_id, intake, decided_at, lookups)
            except Exception as exc:  # one bad entry must not stop the batch: it stays pending, to be retried
                self._failures[entry_id] = f"{type(exc).__name__}: {exc}"
                log.exception("entry %s failed; left pending for retry", entry_id.decode())
                continue
            args += triple
            outcomes.append(outcome)
        published = ""
        if outcomes:
            flags = await self._decide_script(keys=[self.keys.decisions, self.keys.requests], args=args)
            published = flags.decode() if isinstance(flags, bytes) else str(flags)
        seconds = time.perf_counter() - started
        metrics.observe_batch(
            len(entries), outcomes, published, seconds=seconds, cache_hits=lookups.hits, cache_misses=lookups.misses
        )
        return published.count("1")

    def _decided(
        self, entry_id: bytes, intake: RequestMessage | Rejection, decided_at: str, lookups: Lookups
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
            self._failures.pop(entry_id, None)
        return outcome, (entry_id, intake.request_id, payload)

    async def reclaim(self) -> int:
        """Claim entries idle past min_idle_ms (XAUTOCLAIM); dead-letter those delivered too often, decide the rest."""
        response = await self.redis.xautoclaim(
            self.keys.requests,
            self.settings.group,
            self.consumer,
            min_idle_time=self.settings.min_idle_ms,
            start_id=self._reclaim_cursor,
            count=self.settings.batch_size,
        )
        self._reclaim_cursor, claimed, deleted = response[0], response[1], response[2]
        claimed = [(entry_id, fields) for entry_id, fields in claimed if fields is not None]
        if not claimed and not deleted:
            return 0
        deliveries: dict[bytes, int] = {}
        if claimed:
            pending = await self.redis.xpending_range(
                self.keys.requests,
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
            await self._dead_letter(dead, deliveries)
        retry = [(i, f) for i, f in claimed if deliveries.get(i, 1) <= limit]
        if retry:
            await self.process(retry)
        return len(claimed) + len(deleted)

    async def _dead_letter(self, dead: list[Entry], deliveries: dict[bytes, int]) -> None:
        now = datetime.now(UTC)
        args: list[Any] = [self.settings.group, self.settings.deadletter_maxlen]
        for entry_id, fields in dead:
            reason = self._failures.pop(entry_id, "not decided by any worker" if fields else "deleted while pending")
            letter = DeadLetter(self.keys.requests, entry_id, fields, deliveries.get(entry_id, 0), reason)
            args += [entry_id, letter.encode(now)]
        await self._dead_letter_script(keys=[self.keys.deadletter, self.keys.requests], args=args)
        metrics.DEAD_LETTERS.inc(len(dead))
        log.warning("dead-lettered %d entries", len(dead))


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
