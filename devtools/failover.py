"""A master of the cluster dies during a load run: what a live consumer saw, what was lost, and what replay recovers.

Redis replication is asynchronous: a write a master acknowledged may not have reached its replica when the master
dies, and the promoted replica never had it. For fleetgate that window holds two kinds of writes:

- a request a producer was told was added: lost with it, so it is never decided (unless the producer waited for a
  replica with WAIT before counting it as sent, or replays what it sent and got no decision for);
- a batch's COMMIT script (decisions, acknowledgements and dedupe records, replicated together): lost together, so
  the requests come back undelivered or pending and are decided again. A consumer reading the old master may have
  seen the lost decision: it then sees that request decided twice, under two decision ids.

`python -m bench.cluster --failover` prints the figures; tests/cluster/test_failover.py asserts on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from devtools.builders import request_json
from devtools.local_cluster import RedisClusterProcesses
from devtools.workers import fleetgate_env, start_worker_process
from services.keyspace import Keys, ShardKeys, shard_of
from services.redis_client import connect_cluster
from services.streams import live_consumers

SHARDS = 6
PIPELINE = 50
RATE = 2_000
"""Requests per second over all shards: a run of some seconds, so the kill lands in the middle of the load."""
# Reclaim a dead delivery quickly: a request delivered by the old master and lost with its decision waits for this.
WORKER_SETTINGS = {"min_idle_ms": 1000, "reclaim_interval_ms": 250, "block_ms": 100}


@dataclass(frozen=True)
class FailoverOutcome:
    wait_backed: bool
    """Producers counted a request as sent only once WAIT said a replica had it."""
    requests: int
    """Request ids the cluster acknowledged (and, wait-backed, replicated)."""
    failover_s: float
    """From the SIGKILL until the promoted replica served the slots and every node was ok."""
    unreplicated_bytes: int
    """How far the killed master's replication stream was ahead of its replica just before the kill."""
    rejoined_s: float
    """From the SIGKILL until the killed node, started again, was a synced replica of the new master."""
    seen_decided: int
    """Distinct request ids a live consumer (XREAD on every shard) saw decided, before any replay."""
    vanished_decisions: int
    """Decisions that consumer saw which the promoted replica never had."""
    seen_twice: int
    """Request ids that consumer saw decided twice (a vanished decision and the decision made again)."""
    lost_requests: int
    """Acknowledged requests with no decision in the streams after the run: lost with the master."""
    decided_after_replay: int
    """Distinct request ids decided in the streams once the lost ones were published again."""
    duplicated_in_streams: int
    """Request ids with more than one decision in the streams at the end."""

    def table(self) -> list[tuple[str, str]]:
        return [
            ("producer writes", "WAIT 1 (a replica has it)" if self.wait_backed else "plain XADD"),
            ("requests acknowledged", f"{self.requests:,}"),
            ("replica behind the master at the kill", f"{self.unreplicated_bytes:,} bytes"),
            ("kill to failover done", f"{self.failover_s:.1f} s"),
            ("kill to old master back as a replica", f"{self.rejoined_s:.1f} s"),
            ("decisions seen by a live consumer", f"{self.seen_decided:,}"),
            ("  of which vanished with the master", f"{self.vanished_decisions:,}"),
            ("  request ids seen decided twice", f"{self.seen_twice:,}"),
            ("requests lost with the master", f"{self.lost_requests:,}"),
            ("decided after replaying the lost", f"{self.decided_after_replay:,}"),
            ("request ids decided twice in the streams", f"{self.duplicated_in_streams:,}"),
        ]


@dataclass
class _Run:
    keys: Keys
    accepted: dict[str, bytes] = field(default_factory=dict)
    """request id -> its body, once acknowledged."""
    seen: dict[str, set[str]] = field(default_factory=dict)
    """request id -> the decision ids a live consumer saw for it."""
    stop_reading: asyncio.Event = field(default_factory=asyncio.Event)


def _body(n: int) -> tuple[str, bytes]:
    vehicle = f"v-{n % 211}"  # 211 vehicles: every shard gets some
    return vehicle, request_json(f"r{n}", connection_id="c-unknown", vehicle_id=vehicle)


async def run_failover(
    cluster: RedisClusterProcesses,
    *,
    requests: int = 12_000,
    wait_backed: bool = False,
    replica_lag_s: float = 0.0,
    log: Path | None = None,
) -> FailoverOutcome:
    """Publish `requests` over six shards with a gatekeeper running; kill shard 0's master a third of the way in.

    `replica_lag_s` cuts the master's replica off that long before the kill: what the master took meanwhile is what
    asynchronous replication loses (on loopback a replica is otherwise about 0 bytes behind: nothing to lose).
    """
    keys = Keys(prefix=f"failover-{os.getpid()}-{time.monotonic_ns() % 10**6}", shards=SHARDS)
    client = connect_cluster(cluster.url)
    await client.initialize()
    run = _Run(keys)
    worker = _start_worker(cluster.all_nodes_url, keys, log)
    await _until_beating(client, keys, worker)
    readers = [asyncio.create_task(_read_decisions(client, shard, run)) for shard in keys.all_shards]
    try:
        by_shard: dict[int, list[tuple[str, bytes]]] = {shard.index: [] for shard in keys.all_shards}
        for n in range(requests):
            vehicle, body = _body(n)
            by_shard[shard_of(vehicle, SHARDS)].append((f"r{n}", body))
        victim = cluster.master_for_key(keys.shard(0).requests)
        killed = asyncio.create_task(_kill_when(cluster, victim, run, requests // 3, replica_lag_s))
        await asyncio.gather(
            *(_produce(client, keys.shard(i), batch, run, wait_backed) for i, batch in by_shard.items())
        )
        unreplicated, failover_s, rejoined_s = await killed
        await _until_decided(client, keys, set(run.accepted))
        decided = await _decisions_in_streams(client, keys)
        lost = set(run.accepted) - set(decided)
        for shard in keys.all_shards:  # the replay: what the accounting says got no decision, published again
            await _produce(client, shard, [(r, run.accepted[r]) for r in sorted(lost) if _shard(run, r) == shard.index],
                           run, wait_backed=False)  # fmt: skip
        await _until_decided(client, keys, set(run.accepted))
        run.stop_reading.set()
        await asyncio.gather(*readers)
        final = await _decisions_in_streams(client, keys)
    finally:
        run.stop_reading.set()
        for reader in readers:
            reader.cancel()
        worker.terminate()
        await asyncio.to_thread(worker.wait, 30)
        await client.aclose()
    final_ids = {decision_id for ids in final.values() for decision_id in ids}
    return FailoverOutcome(
        wait_backed=wait_backed,
        requests=len(run.accepted),
        failover_s=failover_s,
        rejoined_s=rejoined_s,
        unreplicated_bytes=unreplicated,
        seen_decided=sum(1 for ids in run.seen.values() if ids),
        vanished_decisions=sum(1 for ids in run.seen.values() for d in ids if d not in final_ids),
        seen_twice=sum(1 for ids in run.seen.values() if len(ids) > 1),
        lost_requests=len(lost),
        decided_after_replay=len(set(final) & set(run.accepted)),
        duplicated_in_streams=sum(1 for ids in final.values() if len(ids) > 1),
    )


def _shard(run: _Run, request_id: str) -> int:
    return shard_of(f"v-{int(request_id[1:]) % 211}", run.keys.shards)


def _start_worker(url: str, keys: Keys, log: Path | None) -> subprocess.Popen[bytes]:
    env = fleetgate_env(url, keys.prefix, redis_cluster=True, shards=keys.shards, **WORKER_SETTINGS)
    return start_worker_process(env, log)


async def _produce(
    client: RedisCluster, shard: ShardKeys, batch: list[tuple[str, bytes]], run: _Run, wait_backed: bool
) -> None:
    """Publish a shard's requests in pipelines on one connection to its master; a pipeline that fails is sent again
    (the gatekeeper decides a request id once, however often it is published)."""
    master: Redis | None = None
    try:
        for start in range(0, len(batch), PIPELINE):
            chunk = batch[start : start + PIPELINE]
            while True:
                try:
                    master = master or _master_of(client, shard.requests)
                    # One connection: WAIT waits for the replication of the writes made on its own connection.
                    async with master.pipeline(transaction=False) as pipe:
                        for _, body in chunk:
                            pipe.xadd(shard.requests, {"data": body})
                        if wait_backed:
                            pipe.execute_command("WAIT", 1, 2000)
                        replies = await pipe.execute()
                except (RedisError, OSError):
                    await asyncio.sleep(0.1)
                    if master is not None:
                        await master.aclose()
                        master = None
                    with contextlib.suppress(RedisError, OSError):
                        await client.nodes_manager.initialize()  # a failover: find the new master
                    continue
                if wait_backed and int(replies[-1]) < 1:
                    await asyncio.sleep(0.1)  # no replica confirmed: not counted as sent, so send again
                    continue
                break
            run.accepted.update(chunk)
            await asyncio.sleep(len(chunk) * SHARDS / RATE)
    finally:
        if master is not None:
            await master.aclose()


def _master_of(client: RedisCluster, key: str) -> Redis:
    """A client of the master that serves `key` now (the cluster client spreads a pipeline over connections)."""
    node = client.get_node_from_key(key)
    if node is None:
        raise RedisError(f"no node serves the slot of {key}")
    return Redis(host=node.host, port=int(node.port), protocol=2)


async def _until_beating(client: RedisCluster, keys: Keys, worker: subprocess.Popen[bytes]) -> None:
    """Until the worker's heartbeat is there: it has created the groups and is reading."""
    deadline = time.monotonic() + 30
    while not await live_consumers(client, keys):
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the gatekeeper did not start (exit code {worker.poll()})")
        await asyncio.sleep(0.05)


async def _kill_when(
    cluster: RedisClusterProcesses, port: int, run: _Run, accepted: int, replica_lag_s: float
) -> tuple[int, float, float]:
    """Kill the master once `accepted` requests are in (its replica cut off for `replica_lag_s` first); wait for the
    replica to take over; start the old master again (as an operator would) so the new one has a replica again.
    Returns how many bytes the replica was behind at the kill, and both delays from the kill."""
    while len(run.accepted) < accepted:
        await asyncio.sleep(0.01)
    (replica,) = cluster.replicas_of(port)
    if replica_lag_s:
        replicated = cluster.cut_replication(port)
        await asyncio.sleep(replica_lag_s)
    else:
        replicated = cluster.replication_offset(replica)
    unreplicated = cluster.replication_offset(port) - replicated
    killed_at = time.monotonic()
    cluster.kill(port)
    cluster.resume(replica)
    await asyncio.to_thread(cluster.wait_for_failover, port, 30)
    failover_s = time.monotonic() - killed_at
    await asyncio.to_thread(cluster.rejoin, port)
    return unreplicated, failover_s, time.monotonic() - killed_at


async def _read_decisions(client: RedisCluster, shard: ShardKeys, run: _Run) -> None:
    """A downstream consumer: XREAD from the start, through the failover, noting every decision it sees."""
    last: bytes | str = "0-0"
    while not run.stop_reading.is_set():
        try:
            reply = await client.xread({shard.decisions: last}, count=1000, block=100)
        except (RedisError, AttributeError):  # AttributeError: redis-py, on a connection a topology refresh closed
            await asyncio.sleep(0.1)
            continue
        for _stream, entries in cast("list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]", reply or []):
            for entry_id, fields in entries:
                last = entry_id
                decision = json.loads(fields[b"data"])
                run.seen.setdefault(decision["request_id"], set()).add(decision["decision_id"])


async def _decisions_in_streams(client: RedisCluster, keys: Keys) -> dict[str, list[str]]:
    """request id -> the decision ids on the decision streams now."""
    found: dict[str, list[str]] = {}
    for shard in keys.all_shards:
        for _entry_id, fields in await client.xrange(shard.decisions) or []:
            decision = json.loads((fields or {})[b"data"])
            found.setdefault(decision["request_id"], []).append(decision["decision_id"])
    return found


async def _until_decided(client: RedisCluster, keys: Keys, wanted: set[str], quiet_s: float = 5.0) -> None:
    """Until every wanted id is decided, or nothing new was decided for `quiet_s` (what is left is lost)."""
    loop = asyncio.get_running_loop()
    last_count, last_change = -1, loop.time()
    while True:
        count = len(wanted & set(await _decisions_in_streams(client, keys)))
        if count == len(wanted):
            return
        if count != last_count:
            last_count, last_change = count, loop.time()
        elif loop.time() - last_change > quiet_s:
            return
        await asyncio.sleep(0.2)
