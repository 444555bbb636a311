"""The gatekeeper worker: read a batch from the consumer group, decide it, then commit it in one script.

    XREADGROUP (COUNT batch_size) -> read_entry() -> cache.load() (one MGET) -> decide() -> decision_json()
    -> COMMIT script (dedupe + XADD decisions + XACK, one round trip)

Per batch that is three round trips whatever its size. An entry whose processing raises is left pending (its
error recorded in Redis); the reclaim loop (every worker runs one) claims entries idle longer than `min_idle_ms`,
from dead workers or failed attempts, and sends those delivered more than `max_deliveries` times to the
dead-letter stream, with the error. A failure of Redis itself (unreachable, timing out, out of memory, the
registry unreadable) is not the entries' fault: the worker keeps the batch, backs off and tries again until it
is decided, without a redelivery, so an outage never dead-letters valid requests (`_decide_until_done`).

With several shards (`FLEETGATE_SHARDS`) a worker runs all of that for each shard it consumes (all of them,
or those of `FLEETGATE_WORKER_SHARDS`); each shard's commands touch only keys under its own hash tag. On one
Redis a read takes every consumed shard's new entries at once (XREADGROUP of several streams), and each shard's
entries are then decided and committed as that shard's batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from schemas.decision import decide, rfc3339
from schemas.outbound import Rejection, decision_json, encode_dead_letter, encode_rejection
from schemas.problems import Outcome
from schemas.request_decoder import Request
from services.dedupe import DedupeWindow
from services.gatekeeper import events, metrics, upkeep
from services.gatekeeper.cache import RegistryCache
from services.gatekeeper.connections import refuse_too_few_clients
from services.gatekeeper.intake import read_entry
from services.gatekeeper.resp import Entry, RespScript, RespTransport, transport_for
from services.gatekeeper.scripts import COMMIT, DEAD_LETTER, Commit, dead_letter_arguments
from services.keyspace import ShardKeys
from services.redis_client import REDIS_ERRORS, Client, is_infrastructure_error, refuse_eviction
from services.registry.store import Registry
from services.retention import Retention
from services.settings import Settings
from services.streams import Backoff, beat, consumer_name, ensure_group, every, pause

log = logging.getLogger("fleetgate.gatekeeper")


READ_SPAN = 8
"""A read of several streams takes at most this many batches' worth of entries (see read_count)."""


def read_count(batch_size: int, streams: int) -> int:
    """The COUNT of one XREADGROUP of `streams` streams, which Redis applies to each stream.

    `batch_size` for up to READ_SPAN streams; beyond, shared out so that a read takes at most READ_SPAN batches
    (4,000 entries by default) whatever the shards: bounded memory, and a bounded wait for the read's last shard.
    Not `batch_size // streams`: each shard's entries are committed apart, and 64 shards of 7 entries made 36k
    msg/s where 64 of 62 made 65-75k (the hot path's commands per batch cost more than its entries); one busy
    shard among 64 drained at 26k msg/s and 70k (`batch_size` per stream: 56k and 72k, reads of up to 32,000).
    """
    return max(1, min(batch_size, READ_SPAN * batch_size // streams))


@dataclass(slots=True)
class Shard:
    """One shard this worker consumes: its keys, and the hot path's transport to the server that holds them."""

    keys: ShardKeys
    transport: RespTransport
    commit: RespScript
    reclaim_cursor: bytes | str = "0-0"


class Gatekeeper:
    """One gatekeeper worker: a consumer of the requests streams of its shards, deciding batch by batch."""

    def __init__(self, settings: Settings, redis: Client, consumer: str | None = None) -> None:
        self.settings = settings
        self.redis = redis
        self.keys = settings.keys
        self.consumer = consumer or consumer_name()
        self.cache = RegistryCache(Registry(redis, self.keys), settings.cache_ttl_s)
        self.shards = [self._shard(self.keys.shard(index)) for index in settings.worker_shard_numbers]
        self._dead_letter_script = redis.register_script(DEAD_LETTER)
        self.decisions_retention = Retention(
            redis,
            maxlen=settings.decisions_maxlen,
            hard_cap=settings.decisions_hard_cap,
            max_age_s=settings.decisions_max_age_s,
        )
        self.dedupe_window = DedupeWindow(settings.dedupe_window_s)
        self._ids = itertools.count()
        self._tag = secrets.token_hex(4)
        self._failed: list[tuple[ShardKeys, bytes, str]] = []  # entries whose processing raised, to be recorded
        self.failing_since: float | None = None
        """When the worker began failing to decide for a Redis failure (None: it decides); it stops beating then."""
        self.stopping = asyncio.Event()

    def _shard(self, keys: ShardKeys) -> Shard:
        transport = transport_for(self.redis, keys.requests)
        return Shard(keys, transport, RespScript(transport, COMMIT))

    async def ensure_group(self) -> None:
        """Create each shard's consumer group at id 0 (so a backlog written before any worker started is decided)."""
        for shard in self.shards:
            await ensure_group(self.redis, shard.keys.requests, self.settings.group, "0")

    def stop(self) -> None:
        """Finish the batch in hand, acknowledge it, and return from consume()."""
        self.stopping.set()

    async def consume(self) -> None:
        """Read and decide batches until stop(), `batches_in_flight` at a time (one read, decide, script loop each).

        Several loops keep both Python and Redis busy: while one batch's script runs server-side, the next
        batch is being decided. Decisions of one worker are thus not in request order (nor are they across
        workers). On one Redis each loop reads all the worker's shards in one XREADGROUP, so it holds
        `batches_in_flight` connections for reading however many shards it has. On a Redis Cluster a read cannot
        span slots: the loops are spread over the shards, at least one each (connections.py counts both). A Redis
        outage is waited out with backoff, never fatal.
        """
        readers = [[shard] for shard in self.shards] if isinstance(self.redis, RedisCluster) else [self.shards]
        per_reader = math.ceil(self.settings.batches_in_flight / len(readers))
        loops = []
        for shards in readers:
            reading = asyncio.Lock()  # shared by the reader's loops: one of them waits in Redis at a time
            loops += [self._consume_loop(shards, reading) for _ in range(per_reader)]
        await asyncio.gather(*loops)

    async def _consume_loop(self, shards: list[Shard], reading: asyncio.Lock) -> None:
        """Read `shards` (all on one server) in one XREADGROUP, then decide each shard's entries as its batch."""
        by_stream = {shard.keys.requests.encode(): shard for shard in shards}
        streams = [shard.keys.requests for shard in shards]
        where = streams[0] if len(streams) == 1 else f"{len(streams)} requests streams"
        transport = shards[0].transport
        count = read_count(self.settings.batch_size, len(shards))
        backoff = Backoff()
        while not self.stopping.is_set():
            try:
                # One loop at a time waits in Redis: several blocked readers are each handed the first entry
                # of a burst (Redis serves a blocked client at the XADD that feeds it), a batch of one apiece.
                async with reading:
                    read = await transport.read_groups(
                        streams, self.settings.group, self.consumer, count, self.settings.block_ms
                    )
                for stream, entries in read:
                    await self._decide_until_done(entries, by_stream[stream])
                backoff.reset()
            except REDIS_ERRORS as exc:
                metrics.BATCH_ERRORS.labels(metrics.error_reason(exc)).inc()
                if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                    # The stream or group is gone (a Redis restarted without persistence, a FLUSHALL): create
                    # it again at 0, so whatever is written from now on is decided instead of failing forever.
                    log.warning("consumer group %s missing; creating it again", self.settings.group)
                    with contextlib.suppress(*REDIS_ERRORS):
                        await self.ensure_group()
                    continue
                delay = backoff.next_delay()
                log.warning("redis error on %s, retrying in %.2fs: %s", where, delay, exc)
                await asyncio.sleep(delay)
                with contextlib.suppress(*REDIS_ERRORS):
                    await transport.refresh()

    async def _decide_until_done(self, entries: list[Entry], shard: Shard) -> None:
        """Process a batch in hand until it is committed, through failures of Redis (not of the entries).

        While it retries, the batch stays this consumer's: XCLAIM JUSTID resets the entries' idle time without
        counting a delivery, so no other worker reclaims them (and counts one) while Redis is failing for all.
        A commit whose reply was lost is safe to run again: dedupe makes the second a duplicate. On stop the
        batch is left pending, for another worker to reclaim. Other Redis errors (a script's own `ERR`) leave the
        batch pending too, as a failure of these entries: redelivered, then dead-lettered with the error.
        """
        backoff = Backoff(cap=min(5.0, self.settings.min_idle_ms / 3000))
        while True:
            try:
                await self.process(entries, shard)
            except REDIS_ERRORS as exc:
                metrics.BATCH_ERRORS.labels(metrics.error_reason(exc)).inc()
                if not is_infrastructure_error(exc):
                    self._failed += [(shard.keys, entry_id, f"{type(exc).__name__}: {exc}") for entry_id, _ in entries]
                    log.warning("batch of %d from %s failed; left pending: %s", len(entries), shard.keys.requests, exc)
                    await self._record_failures()
                    return
                if self.failing_since is None:
                    self.failing_since = time.monotonic()
                    metrics.DECIDING.set(0)
                delay = backoff.next_delay()
                if backoff.failures == 1 or backoff.failures % 20 == 0:  # a line per outage, then now and then
                    log.warning(
                        "cannot decide %d entries of %s (%s); retrying every %.2fs at most, not counted as a "
                        "delivery (%d attempts so far)",
                        len(entries),
                        shard.keys.requests,
                        exc,
                        backoff.cap,
                        backoff.failures,
                    )
                await pause(delay, self.stopping)
                if self.stopping.is_set():
                    return  # pending, idle: another worker reclaims them after min_idle_ms
                with contextlib.suppress(*REDIS_ERRORS):
                    await shard.transport.refresh()
                    await self._keep(shard, entries)
                continue
            if self.failing_since is not None:
                log.info("deciding again after %.1fs of Redis failures", time.monotonic() - self.failing_since)
                self.failing_since = None
                metrics.DECIDING.set(1)
            return

    async def _keep(self, shard: Shard, entries: list[Entry]) -> None:
        """Reset the idle time of entries this consumer holds, without counting a delivery (XCLAIM JUSTID)."""
        ids = [entry_id for entry_id, _ in entries]
        await shard.transport.call("XCLAIM", shard.keys.requests, self.settings.group, self.consumer, 0, *ids, "JUSTID")

    async def _record_failures(self) -> None:
        """Write the errors of entries whose processing raised to their shard's failures hash (best effort: without
        it a dead letter says only "not decided by any worker")."""
        failed, self._failed = self._failed, []
        by_shard: dict[ShardKeys, dict[bytes, str]] = {}
        for keys, entry_id, reason in failed:
            by_shard.setdefault(keys, {})[entry_id] = reason[:1000]
        for keys, reasons in by_shard.items():
            try:
                await self.redis.hset(keys.failures, mapping=reasons)  # type: ignore[arg-type]
            except REDIS_ERRORS as exc:
                log.warning("could not record %d failures: %s", len(reasons), exc)

    async def process(self, entries: list[Entry], shard: Shard) -> int:
        """Decide and commit a batch of one shard; returns how many decisions were published (not duplicates)."""
        started = time.perf_counter()
        limit, unreadable = self.settings.max_payload_bytes, shard.keys.unreadable_prefix
        intakes = [(entry_id, read_entry(entry_id, fields, limit, unreadable)) for entry_id, fields in entries]
        lookups = await self.cache.load([i for _, i in intakes if isinstance(i, Request)])
        decided_at = rfc3339(datetime.now(UTC))
        settings = self.settings
        commit = Commit(shard.keys, settings.group, self.dedupe_window, time.time())
        prefix, ids = self._tag, self._ids
        connections, vehicles = lookups.connections, lookups.vehicles
        for entry_id, intake in intakes:
            entry = entry_id.decode()
            decision_id = f"{prefix}-{next(ids)}"
            try:
                if isinstance(intake, Rejection):
                    payload = encode_rejection(intake, decision_id, decided_at, entry).decode()
                    outcome = Outcome.REJECTED
                else:
                    connection = connections[intake.connection_id]
                    decision = decide(intake, connection, vehicles[intake.vehicle_id])
                    app_id = None if connection is None else connection.app_id
                    payload = decision_json(decision, intake, decision_id, decided_at, entry, app_id=app_id)
                    outcome = decision.outcome  # a StrEnum: already its value, without the enum's slow `.value`
            except Exception as exc:  # one bad entry must not stop the batch: it stays pending, to be retried
                self._failed.append((shard.keys, entry_id, f"{type(exc).__name__}: {exc}"))
                log.exception("entry %s failed; left pending for retry", entry)
                continue
            commit.add(entry, intake.request_id, payload, outcome)
        committed = await commit.run(shard.commit)
        if self._failed:
            await self._record_failures()
        metrics.observe_batch(
            len(entries),
            committed.published,
            committed.duplicates,
            seconds=time.perf_counter() - started,
            cache_hits=lookups.hits,
            cache_misses=lookups.misses,
        )
        return committed.published.total()

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
            await self._decide_until_done(retry, shard)
        return len(claimed) + len(deleted)

    async def _dead_letter(self, shard: Shard, dead: list[Entry], deliveries: dict[bytes, int]) -> None:
        now = datetime.now(UTC)
        letters = []
        recorded = await self.redis.hmget(shard.keys.failures, [entry_id for entry_id, _ in dead])
        for (entry_id, fields), error in zip(dead, recorded, strict=True):
            if error is not None:
                reason = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
            else:  # its worker died with it, every time (or it was deleted from the stream while pending)
                reason = "not decided by any worker" if fields else "deleted while pending"
            times = deliveries.get(entry_id, 0)
            letter = encode_dead_letter(shard.keys.requests, entry_id, fields, deliveries=times, reason=reason, now=now)
            letters.append((entry_id, letter))
        keys, args = dead_letter_arguments(shard.keys, self.settings.group, self.settings.deadletter_maxlen, letters)
        await self._dead_letter_script(keys=keys, args=args)
        metrics.DEAD_LETTERS.inc(len(dead))
        log.warning("dead-lettered %d entries from %s", len(dead), shard.keys.requests)


async def serve(gatekeeper: Gatekeeper) -> None:
    """Run a worker until gatekeeper.stop(): the consume loop and its upkeep jobs, then a clean exit."""
    settings, stopping = gatekeeper.settings, gatekeeper.stopping
    await _until_redis_answers(gatekeeper)
    if stopping.is_set():
        return
    await refuse_eviction(gatekeeper.redis, settings)  # an evicting Redis breaks exactly-once: refuse to start
    await refuse_too_few_clients(gatekeeper.redis, settings)  # short of connections, readers would fail: refuse
    jobs = (
        ("reclaim", settings.reclaim_interval_ms / 1000, gatekeeper.reclaim),
        ("trim requests", settings.trim_interval_ms / 1000, lambda: upkeep.trim_requests(gatekeeper)),
        ("trim decisions", settings.trim_interval_ms / 1000, lambda: upkeep.trim_outputs(gatekeeper)),
        ("heartbeat", settings.heartbeat_ttl_s / 3, lambda: _beat(gatekeeper)),
    )
    tasks = [asyncio.create_task(events.follow_connection_events(gatekeeper))]
    tasks += [asyncio.create_task(every(seconds, job, stopping, name)) for name, seconds, job in jobs]
    streams = ", ".join(shard.keys.requests for shard in gatekeeper.shards)
    log.info("gatekeeper %s consuming %s as group %s", gatekeeper.consumer, streams, settings.group)
    try:
        await gatekeeper.consume()
    finally:
        stopping.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await gatekeeper.redis.delete(gatekeeper.keys.heartbeat(gatekeeper.consumer))
        except REDIS_ERRORS as exc:  # stopped while Redis is away: the heartbeat expires on its own
            log.warning("could not delete the heartbeat (%s); it expires in %d s", exc, settings.heartbeat_ttl_s)
        log.info("gatekeeper %s stopped", gatekeeper.consumer)


async def _beat(gatekeeper: Gatekeeper) -> None:
    if gatekeeper.failing_since is not None:
        return  # it cannot decide: let the heartbeat expire, so that `gatekeeper check` reports it unhealthy
    await beat(gatekeeper.redis, gatekeeper.keys, gatekeeper.consumer, gatekeeper.settings.heartbeat_ttl_s)


async def _until_redis_answers(gatekeeper: Gatekeeper) -> None:
    """Create the groups and beat once, retrying with backoff while Redis is away (it may start after us)."""
    backoff = Backoff()
    while not gatekeeper.stopping.is_set():
        try:
            await gatekeeper.ensure_group()
            await _beat(gatekeeper)
            return
        except REDIS_ERRORS as exc:
            delay = backoff.next_delay()
            log.warning("waiting for Redis (%s); retrying in %.1fs", exc, delay)
            await pause(delay, gatekeeper.stopping)
