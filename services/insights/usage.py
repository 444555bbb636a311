"""The usage consumer: each app's decisions counted in hourly buckets, what least-privilege advice reads.

A consumer group (`usage`, FLEETGATE_USAGE_GROUP) on every shard's decisions stream, created at 0 like the other
consumers. One loop per shard reads a batch (COUNT `batch_size`), decodes only the counted fields of each entry
(counts.py), adds them up per app and hour in Python, and sends the sums with the batch's ids in one script:

    COUNT: every id still pending for this consumer?  no  -> change nothing, answer the ids that are not
                                                      yes -> HINCRBY the sums, EXPIREAT the buckets, XACK the ids

So a batch is counted exactly once: a crash before the script leaves it pending (reclaimed by a live consumer once
idle `claim_idle_ms`, and counted then), a crash after it leaves it counted and acknowledged, and a batch that
another consumer took over meanwhile (or that was already counted: its commit run twice) is not counted again;
its entries are left to their owner, the rest counted in a second run. The buckets of a shard share its hash tag,
so the script stays in one slot on a Redis Cluster. A bucket expires FLEETGATE_USAGE_RETENTION_DAYS after its
hour. An entry that is not a decision is logged, counted as skipped and acknowledged. Entries trimmed before the
group read them (the decisions' hard cap, while no usage consumer ran) are logged and counted as missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from services.gatekeeper.resp import Arg, Entry, RespScript, transport_for
from services.insights.counts import HOUR_MS, MalformedDecisionError, Use, VehicleKind, read_use, tally
from services.insights.kinds import VehicleKinds
from services.keyspace import ShardKeys
from services.redis_client import REDIS_ERRORS, Client
from services.registry.store import Registry
from services.settings import Settings
from services.streams import (
    Backoff,
    claim_idle,
    consumer_name,
    ensure_group,
    every,
    forget_dead_consumers,
    pause,
    take_gap,
)

log = logging.getLogger("fleetgate.usage")

CLAIM_IDLE_MS = 60_000
"""A pending entry idle this long belongs to a dead usage consumer; a live one counts a batch within a second."""
COMMIT_ATTEMPTS = 3
_NOT_CAPABLE = "VEHICLE_NOT_CAPABLE"

# KEYS: the decisions stream, then each bucket. ARGV: group, consumer, n, the n entry ids, then per bucket (in KEYS
# order): its EXPIREAT time, its number of fields f, f pairs of field and increment.
# Returns the ids that are not pending for this consumer (nothing was changed then); empty once counted.
COUNT = """
local group, consumer, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
local stray = {}
for i = 4, n + 3 do
  if #redis.call('XPENDING', KEYS[1], group, ARGV[i], ARGV[i], 1, consumer) == 0 then
    stray[#stray + 1] = ARGV[i]
  end
end
if #stray > 0 then return stray end
local a = n + 4
for k = 2, #KEYS do
  local expire_at, fields = ARGV[a], tonumber(ARGV[a + 1])
  a = a + 2
  for _ = 1, fields do
    redis.call('HINCRBY', KEYS[k], ARGV[a], ARGV[a + 1])
    a = a + 2
  end
  redis.call('EXPIREAT', KEYS[k], expire_at)
end
if n > 0 then redis.call('XACK', KEYS[1], group, unpack(ARGV, 4, n + 3)) end
return stray
"""


@dataclass
class UsageStats:
    read: int = 0
    """Entries read, claimed ones included."""
    counted: int = 0
    """Decisions added to an app's bucket."""
    unattributed: int = 0
    """Decisions of no app (their connection was unknown): acknowledged, not counted."""
    skipped: int = 0
    """Entries that are not decisions: acknowledged, not counted."""
    stray: int = 0
    """Entries that were no longer this consumer's when their batch was committed: left to their owner."""
    missed: int = 0
    """Entries trimmed from a stream before the group read them."""

    def to_json(self) -> dict[str, int]:
        return dict(vars(self))


class UsageConsumer:
    """One usage consumer: run() until stop()."""

    def __init__(
        self,
        settings: Settings,
        redis: Client,
        *,
        consumer: str | None = None,
        batch_size: int = 500,
        claim_idle_ms: int = CLAIM_IDLE_MS,
        upkeep_interval_s: float = 30.0,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.group = settings.usage_group
        self.consumer = consumer or consumer_name()
        self.batch_size = batch_size
        self.claim_idle_ms = claim_idle_ms
        self.upkeep_interval_s = upkeep_interval_s
        self.retention_s = settings.usage_retention_days * 86_400
        self.shards = settings.keys.all_shards
        self.kinds = VehicleKinds(Registry(redis, settings.keys), settings.cache_ttl_s)
        self.stats = UsageStats()
        self.stopping = asyncio.Event()
        self._scripts: dict[str, RespScript] = {}

    def stop(self) -> None:
        """Finish the batches in hand (counted and acknowledged), then return from run()."""
        self.stopping.set()

    async def start(self) -> None:
        """Create the group on every shard's decisions (at 0: decisions written before the first consumer count)."""
        for shard in self.shards:
            await ensure_group(self.redis, shard.decisions, self.group, "0")

    async def run(self, *, until_idle: bool = False) -> UsageStats:
        """Count decisions until stop(), or (until_idle) until a read of each shard waited and found nothing."""
        if until_idle:  # a batch run reports a Redis it cannot reach; a long-running one waits for it
            await self.start()
            await self.upkeep()
            await asyncio.gather(*(self._consume(shard, until_idle=True) for shard in self.shards))
            return self.stats
        for shard in self.shards:
            await self._ensure_group(shard)
        upkeep = asyncio.create_task(every(self.upkeep_interval_s, self.upkeep, self.stopping, "usage upkeep"))
        try:
            await asyncio.gather(*(self._consume(shard, until_idle=False) for shard in self.shards))
        finally:
            self.stopping.set()
            await upkeep
        return self.stats

    async def _consume(self, shard: ShardKeys, *, until_idle: bool) -> None:
        transport = transport_for(self.redis, shard.decisions)
        backoff = Backoff(0.2)
        while not self.stopping.is_set():
            try:
                entries = await transport.read_group(
                    shard.decisions, self.group, self.consumer, self.batch_size, self.settings.block_ms
                )
                if entries:
                    await self.count(shard, entries)
                elif until_idle:
                    return
                backoff.reset()
            except REDIS_ERRORS as exc:
                if until_idle:  # a batch run reports the outage; a long-running consumer waits it out
                    raise
                delay = backoff.next_delay()
                log.warning("redis error on %s, retrying in %.1fs: %s", shard.decisions, delay, exc)
                await pause(delay, self.stopping)
                with contextlib.suppress(*REDIS_ERRORS):  # still away: the next read says so again
                    await transport.refresh()
                await self._ensure_group(shard)  # the stream may have been deleted, and its group with it
            except Exception:  # a bug must not end the counting for good, silently
                if until_idle:
                    raise
                log.exception("counting %s failed; retrying", shard.decisions)
                await pause(backoff.next_delay(), self.stopping)

    async def _ensure_group(self, shard: ShardKeys) -> None:
        try:
            await ensure_group(self.redis, shard.decisions, self.group, "0")
        except REDIS_ERRORS as exc:
            log.warning("cannot create group %s on %s yet: %s", self.group, shard.decisions, exc)

    async def upkeep(self) -> None:
        """Report entries trimmed before the group read them; count the entries dead consumers left idle, then
        delete those consumers."""
        for shard in self.shards:
            stream = shard.decisions
            gap = await take_gap(self.redis, stream, self.group)
            if gap:
                log.error("%d decisions of %s were trimmed before usage group %s counted them", gap, stream, self.group)
                self.stats.missed += gap
            claims = claim_idle(self.redis, stream, self.group, self.consumer, self.claim_idle_ms)
            async for claimed in claims:
                await self.count(shard, claimed)
            await forget_dead_consumers(self.redis, stream, self.group, self.claim_idle_ms, keep=self.consumer)

    async def count(self, shard: ShardKeys, entries: Sequence[Entry]) -> None:
        """Count one batch of the shard's decisions and acknowledge it, in one script (see the module's text)."""
        self.stats.read += len(entries)
        uses: list[Use] = []
        skipped: list[tuple[bytes, str]] = []
        for entry_id, fields in entries:
            try:
                uses.append(read_use(entry_id, fields))
            except MalformedDecisionError as exc:
                skipped.append((entry_id, str(exc)))
        not_capable = [u.vehicle_id for u in uses if u.outcome == _NOT_CAPABLE and u.vehicle_id]
        kinds = await self.kinds.of(not_capable) if not_capable else {}
        ids = [entry_id for entry_id, _ in entries]
        script = self._script(shard)
        for _ in range(COMMIT_ATTEMPTS):
            keys, args = self.count_arguments(shard, ids, uses, kinds)
            stray = set(await script(keys, args)) if ids else set()
            if not stray:
                break
            self.stats.stray += len(stray)
            ids = [i for i in ids if i not in stray]
            uses = [u for u in uses if u.entry_id not in stray]
            skipped = [s for s in skipped if s[0] not in stray]
        else:
            return  # every attempt raced another consumer: what is left stays pending, for reclaim
        self.stats.counted += sum(u.app_id is not None for u in uses)
        self.stats.unattributed += sum(u.app_id is None for u in uses)
        self.stats.skipped += len(skipped)
        if skipped:
            first_id, reason = skipped[0]
            log.warning(
                "%d entries of %s are not decisions and were skipped (the first, %s: %s)",
                len(skipped),
                shard.decisions,
                first_id.decode(),
                reason,
            )

    def count_arguments(
        self, shard: ShardKeys, ids: Sequence[bytes], uses: Sequence[Use], kinds: Mapping[str, VehicleKind]
    ) -> tuple[list[str], list[Arg]]:
        """COUNT's keys and arguments for a batch: its ids, and its uses summed per bucket."""
        keys = [shard.decisions]
        args: list[Arg] = [self.group, self.consumer, len(ids), *ids]
        for (app_id, hour), counts in tally(uses, kinds).items():
            keys.append(shard.usage(app_id, hour))
            args += ((hour + 1) * HOUR_MS // 1000 + self.retention_s, len(counts))
            for name, count in counts.items():
                args += (name, count)
        return keys, args

    def _script(self, shard: ShardKeys) -> RespScript:
        found = self._scripts.get(shard.decisions)
        if found is None:
            transport = transport_for(self.redis, shard.decisions)
            found = self._scripts[shard.decisions] = RespScript(transport, COUNT)
        return found
