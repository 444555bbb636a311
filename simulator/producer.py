"""A producer process: open-loop Poisson arrivals at its share of the rate, published with pipelined XADDs.

Open loop means arrivals follow the clock, not the system's answers: a request's `issued_at` is its scheduled
arrival, so when the producer falls behind, the lateness shows in the latency and in `behind_s` instead of
silently lowering the offered rate.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as EventType
from typing import Any

from schemas.decision import rfc3339
from services.keyspace import Keys
from services.redis_client import REDIS_ERRORS, open_client
from simulator.accounting import Sent
from simulator.workload import RequestMaker, WorkloadMix
from simulator.world import World

TICK_S = 0.005
MAX_BATCH = 1000
"""At most this many arrivals per pipeline: a producer that fell behind catches up in steady steps."""


@dataclass(frozen=True, slots=True)
class ProducerJob:
    redis_url: str
    prefix: str
    shards: int
    redis_cluster: bool
    index: int
    rate: float
    """This producer's share of the arrivals per second."""
    duration_s: float
    seed: int
    run_id: str
    world: World
    mix: WorkloadMix


@dataclass(frozen=True, slots=True)
class ProducerReady:
    """Sent once the process is up and holds its world: the load starts when every producer is ready."""

    index: int


@dataclass(frozen=True, slots=True)
class ProducerDone:
    index: int
    sent: int
    duplicates: int
    """Extra publishes of already-sent request ids."""
    behind_s: float
    """The longest any arrival waited past its scheduled time before it was published."""


def produce_in_process(
    job: ProducerJob, out: Queue[Any], go: EventType, started_at: Synchronized[float], stopping: EventType
) -> None:
    """Entry point of a producer process: ProducerReady, then (after `go`) lists of Sent, then ProducerDone.

    Starting a process and unpickling a large world takes seconds: the load's t = 0 (`started_at`, shared by all
    producers) is set by the parent only once every producer is ready.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the parent's to handle: it stops producers itself
    out.put(ProducerReady(job.index))
    go.wait()
    try:
        asyncio.run(produce(job, out.put, started_at.value))
    except REDIS_ERRORS:
        if not stopping.is_set():
            raise
        # The load was interrupted and its Redis is going away: nothing left to report.


async def produce(
    job: ProducerJob, report: Callable[[list[Sent] | ProducerDone], Any], started_at: float
) -> ProducerDone:
    redis = open_client(job.redis_url, cluster=job.redis_cluster)
    keys = Keys(job.prefix, job.shards)
    # Each vehicle's requests go to its shard's stream (one stream unsharded): its order is kept there.
    streams = [keys.shard_of_vehicle(vehicle.id).requests for vehicle in job.world.vehicles]
    unreadable = [keys.shard_of_vehicle(vehicle.id).unreadable_prefix for vehicle in job.world.vehicles]
    maker = RequestMaker(job.world, job.mix, seed=job.seed * 1000 + job.index, id_prefix=f"{job.run_id}-{job.index}-")
    rng = random.Random(job.seed * 7919 + job.index)
    end = started_at + job.duration_s
    next_at = started_at + rng.expovariate(job.rate)
    recent: deque[tuple[str, bytes]] = deque(maxlen=1000)  # (stream, payload) of the last requests
    sent = duplicates = 0
    behind = 0.0
    try:
        while next_at < end:
            now = time.time()
            if next_at > now:
                await asyncio.sleep(min(next_at - now, TICK_S))
                continue
            due: list[float] = []
            while next_at <= now and next_at < end and len(due) < MAX_BATCH:
                due.append(next_at)
                next_at += rng.expovariate(job.rate)
            behind = max(behind, now - due[0])
            planned = [maker.make(rfc3339(datetime.fromtimestamp(at, UTC))) for at in due]
            again = [rng.choice(recent) for _ in due if recent and rng.random() < job.mix.duplicate_share]
            async with redis.pipeline(transaction=False) as pipe:
                for request in planned:
                    pipe.xadd(streams[request.vehicle], {"data": request.payload})
                for stream, payload in again:
                    pipe.xadd(stream, {"data": payload})
                entry_ids = await pipe.execute()
            report(
                [
                    (
                        f"{unreadable[request.vehicle]}{entry_id.decode()}"
                        if request.unreadable
                        else request.request_id,
                        at,
                        request.vehicle,
                        request.target,
                        request.flags,
                    )
                    for request, at, entry_id in zip(planned, due, entry_ids, strict=False)
                ]
            )
            recent.extend((streams[r.vehicle], r.payload) for r in planned if not r.unreadable)
            sent += len(planned)
            duplicates += len(again)
    finally:
        await redis.aclose()
    done = ProducerDone(job.index, sent, duplicates, behind)
    report(done)
    return done
