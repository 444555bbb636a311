"""The gatekeeper benchmark's open-loop load: requests XADDed at a fixed rate, their decisions read back.

The generator's own traffic goes on bare connections (bench/raw.py): through redis-py it cost about 10 µs of CPU
per XADD and per decision read, taken from the two cores the worker and Redis run on.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from bench.raw import RawRedis, pack
from bench.workload import with_issued_at
from schemas.decision import rfc3339
from services.keyspace import Keys


def request_id_of(payload: bytes) -> str:
    """A payload's request id, cut out rather than parsed: the producer must not be the bottleneck it measures.

    Both request and decision JSON are compact and written by this project, with the id a plain string.
    """
    return payload.split(b'"request_id":"', 1)[1].split(b'"', 1)[0].decode()


async def open_loop(
    port: int, keys: Keys, payloads: list[bytes], *, rate: float, start_after: bytes | str, timeout: float
) -> tuple[dict[str, float], dict[str, float], float]:
    """Send `payloads` at `rate`/s and read decisions after `start_after` until each has one: when each request
    was sent and its decision read (by request id), and this process's CPU % meanwhile."""
    producer = await RawRedis.open("127.0.0.1", port)
    consumer = await RawRedis.open("127.0.0.1", port)
    stream, decisions, total = keys.requests.encode(), keys.decisions.encode(), len(payloads)
    sent: dict[str, float] = {}
    received: dict[str, float] = {}

    async def produce() -> None:
        started, done = time.perf_counter(), 0
        while done < total:
            due = min(total, int((time.perf_counter() - started) * rate))
            if due > done:
                now = time.time()
                issued_at = rfc3339(datetime.fromtimestamp(now, UTC))
                batch = payloads[done:due]
                await producer.call([pack(b"XADD", stream, b"*", b"data", with_issued_at(p, issued_at)) for p in batch])
                for payload in batch:
                    sent[request_id_of(payload)] = now
                done = due
            await asyncio.sleep(0.001)

    async def consume() -> None:
        last = start_after if isinstance(start_after, bytes) else start_after.encode()
        read = (b"XREAD", b"COUNT", b"5000", b"BLOCK", b"200", b"STREAMS", decisions)
        while len(received) < total:
            (reply,) = await consumer.call([pack(*read, last)])
            now = time.time()
            for _, entries in reply or []:
                for entry_id, fields in entries:
                    last = entry_id
                    received[request_id_of(fields[1])] = now

    cpu, started = time.process_time(), time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.gather(produce(), consume()), timeout=timeout)
    finally:
        await producer.close()
        await consumer.close()
    return sent, received, 100 * (time.process_time() - cpu) / (time.perf_counter() - started)
