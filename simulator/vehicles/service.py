"""The vehicles service: simulated vehicles answering the ALLOWED decisions, on `{prefix}:responses`.

    XREADGROUP decisions (group `vehicles`) -> the ALLOWED ones -> vehicles (cached registry records) and their
    states (one pipeline of HMGETs) -> answer() each, in stream order -> RESPOND script (responses, state changes,
    dedupe records and XACK in one step)

The guarantees are the gatekeeper's: exactly one response per ALLOWED request id (a dedupe record per request,
written with the response), a command's state change and its response written together or not at all, entries
of dead consumers reclaimed after `min_idle_ms`, those delivered more than `max_deliveries` times dead-lettered,
a Redis failure waited out without counting a delivery, the responses stream trimmed by its retention, a
heartbeat (`fleetgate vehicles check`), SIGTERM finishing the batch in hand.

Two processes answering the same vehicle at once: the state write is checked against the version read
(respond.py), and the loser answers again from the winner's state.

Injected faults (faults.py) are read with each vehicle's state and applied by answer(); a count taken from a `next N`
fault is written with the response. A decision a delay fault holds back leaves its batch (the rest is written at
once) and is answered when due by the service's Delays loop (delays.py), pending meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import secrets
import time
from typing import Any

from redis.typing import StreamIdT

from services.gatekeeper.resp import Entry, RespScript, transport_for
from services.keyspace import ShardKeys
from services.redis_client import REDIS_ERRORS, Client, is_infrastructure_error, refuse_eviction
from services.registry.store import Registry
from services.retention import Retention
from services.settings import Settings
from services.streams import Backoff, beat, consumer_name, ensure_group, every, pause
from simulator.vehicles import SimClock, metrics
from simulator.vehicles.answer import answer
from simulator.vehicles.delays import Delays
from simulator.vehicles.intake import VehicleCache, allowed_decision
from simulator.vehicles.reclaim import Reclaim
from simulator.vehicles.respond import RESPOND, Respond, Responded
from simulator.vehicles.store import Stored, load_states, settings_clock

log = logging.getLogger("fleetgate.vehicles")

CONFLICT_ROUNDS = 5
"""Times a batch's entries whose vehicle changed under them are answered again before being left for reclaim."""


class VehicleService:
    """One vehicles service process: a consumer of the decisions streams of its shards."""

    def __init__(self, settings: Settings, redis: Client, consumer: str | None = None) -> None:
        self.settings = settings
        self.redis = redis
        self.keys = settings.keys
        self.consumer = consumer or consumer_name()
        self.registry = Registry(redis, self.keys)
        self.shards = [self.keys.shard(index) for index in settings.worker_shard_numbers]
        self.retention = Retention(
            redis, maxlen=settings.responses_maxlen, hard_cap=settings.responses_hard_cap, max_age_s=0
        )
        self.clock: SimClock | None = None
        self._vehicles = VehicleCache(self.registry, settings.cache_ttl_s)
        self.delays = Delays(redis, settings.vehicles_group, self.consumer, self._answer_delayed)
        self._scripts: dict[str, RespScript] = {}
        self._latest: dict[str, Stored] = {}
        self._ids = itertools.count()
        self._tag = secrets.token_hex(4)
        self._reclaim = Reclaim(redis, settings, self.consumer)
        self.failing_since: float | None = None
        self.stopping = asyncio.Event()

    def stop(self) -> None:
        self.stopping.set()

    async def start(self) -> None:
        """Create the groups (at 0: decisions written before the first service started are answered too) and read
        the simulated clock."""
        for shard in self.shards:
            await ensure_group(self.redis, shard.decisions, self.settings.vehicles_group, "0")
        self.clock = await settings_clock(self.redis, self.keys, self.settings)

    async def consume(self) -> None:
        """`batches_in_flight` read-answer-write loops per shard, as the gatekeeper runs: while one batch's script
        runs in Redis the next is answered in Python (one loop left the process idle a quarter of the time). Two
        batches touching one vehicle are safe: the state write is version-checked and the loser answers again."""
        loops = self.settings.batches_in_flight
        await asyncio.gather(*(self._consume_loop(shard) for shard in self.shards for _ in range(loops)))

    def _script(self, shard: ShardKeys) -> RespScript:
        found = self._scripts.get(shard.decisions)
        if found is None:
            found = self._scripts[shard.decisions] = RespScript(transport_for(self.redis, shard.decisions), RESPOND)
        return found

    async def _consume_loop(self, shard: ShardKeys) -> None:
        transport = transport_for(self.redis, shard.decisions)
        script = self._script(shard)
        backoff = Backoff()
        settings = self.settings
        while not self.stopping.is_set():
            try:
                entries = await transport.read_group(
                    shard.decisions, settings.vehicles_group, self.consumer, settings.batch_size, settings.block_ms
                )
                backoff.reset()
            except REDIS_ERRORS as exc:
                delay = backoff.next_delay()
                log.warning("redis error on %s, retrying in %.2fs: %s", shard.decisions, delay, exc)
                await pause(delay, self.stopping)
                with contextlib.suppress(*REDIS_ERRORS):
                    await self.start()
                continue
            if entries:
                await self._answer_until_done(entries, shard, script)

    async def _answer_delayed(self, entries: list[Entry], shard: ShardKeys) -> None:
        await self._answer_until_done(entries, shard, self._script(shard), served=True)

    async def _answer_until_done(
        self, entries: list[Entry], shard: ShardKeys, script: RespScript, *, served: bool = False
    ) -> None:
        """Answer a batch through Redis failures without counting a delivery (as the gatekeeper does)."""
        backoff = Backoff(cap=min(5.0, self.settings.min_idle_ms / 3000))
        while True:
            try:
                await self.process(entries, shard, script, served=served)
            except REDIS_ERRORS as exc:
                if not is_infrastructure_error(exc) or self.stopping.is_set():
                    log.warning("batch of %d from %s failed; left pending: %s", len(entries), shard.decisions, exc)
                    return
                self.failing_since = self.failing_since or time.monotonic()
                delay = backoff.next_delay()
                log.warning("cannot answer %d decisions (%s); retrying in %.2fs", len(entries), exc, delay)
                await pause(delay, self.stopping)
                with contextlib.suppress(*REDIS_ERRORS):
                    ids: list[StreamIdT] = [entry_id for entry_id, _ in entries]
                    await self.redis.xclaim(
                        shard.decisions, self.settings.vehicles_group, self.consumer, 0, ids, justid=True
                    )
                continue
            self.failing_since = None
            return

    async def process(
        self, entries: list[Entry], shard: ShardKeys, script: RespScript, *, served: bool = False
    ) -> Responded:
        """Answer one batch of one shard's decisions; entries whose vehicle changed meanwhile are answered again.

        Entries a delay fault holds back are left out (and to self.delays) unless their delay is `served`; those
        held already are left out too (a batch tried again after a Redis failure, a reclaim).
        """
        started = time.perf_counter()
        pending = entries if served else [e for e in entries if not self.delays.holds(shard, e[0])]
        responded = Responded({})
        for _ in range(CONFLICT_ROUNDS):
            respond = await self._responses(pending, shard, served=served)
            if not respond.entry_ids:
                break
            keys, args = respond.arguments()
            responded = Responded.of(respond, await script(keys, args))
            for entry_id, flag in responded.flags.items():
                vehicle_id = respond.vehicles.get(entry_id)
                if vehicle_id is None:
                    continue
                if flag == "1" and entry_id in respond.written:
                    self._keep(vehicle_id, respond.written[entry_id])
                elif flag in "C0":  # its state was not written: forget what was kept
                    self._latest.pop(vehicle_id, None)
            conflicts = set(responded.conflicts)
            metrics.CONFLICTS.inc(len(conflicts))
            metrics.DUPLICATES.inc(responded.count("0"))
            if not conflicts:
                break
            pending = [entry for entry in pending if entry[0] in conflicts]
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        return responded

    async def _responses(self, entries: list[Entry], shard: ShardKeys, *, served: bool) -> Respond:
        respond = Respond(shard, self.settings.vehicles_group, self.settings.dedupe_window_s)
        allowed: list[tuple[Entry, dict[str, Any]]] = []
        for entry in entries:
            decision = allowed_decision(*entry)
            if decision is None:
                respond.acknowledge(entry[0])
            else:
                allowed.append((entry, decision))
        if not allowed:
            return respond
        assert self.clock is not None, "start() reads the clock"
        now = self.clock.now()
        vehicles = await self._vehicles.get({d["vehicle_id"] for _, d in allowed})
        known = [v for v in vehicles.values() if v is not None]
        seed = self.settings.sim_seed
        states: dict[str, Stored] = await load_states(self.redis, self.keys, known, seed, now, held=self._latest)
        writing: set[str] = set()  # vehicles this batch writes a state for: not kept before the script wrote it
        for entry, decision in allowed:
            entry_id, vehicle_id = entry[0], decision["vehicle_id"]
            stored = states.get(vehicle_id)
            try:
                result = answer(
                    decision,
                    vehicles.get(vehicle_id),
                    None if stored is None else stored.state,
                    now,
                    self._next_id(),
                    refuse_asleep=self.settings.sim_refuse_asleep,
                    faults=None if stored is None else stored.faults,
                )
            except Exception:  # a bug or a tampered decision: left pending, redelivered, then dead-lettered
                log.exception("decision %s could not be answered; left pending", entry_id.decode())
                continue
            if result.delay_ms and not served:  # answered again when due; the rest of the batch goes on
                self.delays.hold(entry, shard, result.delay_ms)
                continue
            metrics.responses(result.code).inc()
            request_id = decision["request_id"]
            write = result.state
            if write is None and stored is not None and stored.version == 0:
                write = result.latest or stored.state  # a vehicle's first state: stored, not drawn again
            if stored is None or (write is None and result.faults is None):
                respond.answer(entry_id, request_id, result.response, vehicle_id=vehicle_id, version=0, state=None)
                if stored is not None and result.latest is not None:
                    states[vehicle_id] = Stored(result.latest, stored.version, stored.faults)
                    if vehicle_id not in writing:
                        self._keep(vehicle_id, states[vehicle_id])  # what Redis holds at that version, advanced
                continue
            respond.answer(
                entry_id,
                request_id,
                result.response,
                vehicle_id=vehicle_id,
                version=stored.version,
                state=None if write is None else write.encode(),
                faults=None if result.faults is None else result.faults.encode(),
            )
            states[vehicle_id] = Stored(  # the next answer builds on it
                result.latest or write or stored.state,
                stored.version + 1,
                stored.faults if result.faults is None else result.faults,
            )
            respond.written[entry_id] = states[vehicle_id]  # kept once the script says it was written
            writing.add(vehicle_id)
        return respond

    def _keep(self, vehicle_id: str, stored: Stored) -> Stored:
        """Keep a vehicle's latest state (bounded): only a state Redis holds at that version, advanced, so that a
        loop answering another batch of the same vehicle never builds on a write that did not happen."""
        if len(self._latest) > 200_000:
            self._latest.clear()
        self._latest[vehicle_id] = stored
        return stored

    def _next_id(self) -> str:
        return f"{self._tag}-{next(self._ids)}"

    async def reclaim(self) -> int:
        """Claim decisions idle past min_idle_ms; dead-letter those delivered too often, answer the rest."""
        claimed_total = 0
        for shard in self.shards:
            claimed, retry = await self._reclaim.claim(shard, functools.partial(self.delays.holds, shard))
            claimed_total += claimed
            if retry:
                await self._answer_until_done(retry, shard, self._script(shard))
        return claimed_total

    async def trim(self) -> int:
        """Apply the responses' retention on each shard (never below what a consumer group has not read)."""
        removed = 0
        for shard in self.shards:
            retained = await self.retention.apply(shard.responses)  # by length only: no server time needed
            removed += retained.trimmed
            for group, unread in retained.unread_trimmed.items():
                log.error(
                    "%d responses of %s trimmed before group %s read them (hard cap)", unread, shard.responses, group
                )
        return removed

    async def beat(self) -> None:
        if self.failing_since is None:
            prefix = self.keys.vehicles_heartbeat_prefix
            await beat(self.redis, self.keys, self.consumer, self.settings.heartbeat_ttl_s, prefix=prefix)


async def serve(service: VehicleService) -> None:
    """Run a vehicles service until service.stop(): its consume loops and upkeep jobs, then a clean exit."""
    settings = service.settings
    backoff = Backoff()
    while not service.stopping.is_set():
        try:
            await refuse_eviction(service.redis, settings)
            await service.start()
            await service.beat()
            break
        except REDIS_ERRORS as exc:
            delay = backoff.next_delay()
            log.warning("waiting for Redis (%s); retrying in %.1fs", exc, delay)
            await pause(delay, service.stopping)
    jobs = (
        ("reclaim", settings.reclaim_interval_ms / 1000, service.reclaim),
        ("trim responses", settings.trim_interval_ms / 1000, service.trim),
        ("heartbeat", settings.heartbeat_ttl_s / 3, service.beat),
        ("hold delayed decisions", settings.min_idle_ms / 3000, service.delays.renew),
    )
    tasks = [asyncio.create_task(every(seconds, job, service.stopping, name)) for name, seconds, job in jobs]
    tasks.append(asyncio.create_task(service.delays.run()))
    log.info(
        "vehicles service %s answering %d shard(s) as group %s",
        service.consumer,
        len(service.shards),
        settings.vehicles_group,
    )
    try:
        await service.consume()
    finally:
        service.stopping.set()
        service.delays.close()  # what it holds stays pending: answered by a service that reclaims it
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(*REDIS_ERRORS):
            await service.redis.delete(f"{service.keys.vehicles_heartbeat_prefix}{service.consumer}")
        log.info("vehicles service %s stopped", service.consumer)
