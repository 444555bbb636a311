"""Load shapes (open loop at a rate, closed loop of N clients) and what one run measured."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench.api.client import Target

IDS_HEADER = b"fleetgate-request-ids"


@dataclass
class Sample:
    scheduled: float  # wall clock (time.time()) the call was due
    latency: float  # seconds from `scheduled` to the whole answer read
    status: int  # 0: no answer (connection error, timeout)
    request_ids: str = ""


class Meter:
    """The calls of one run, and the CPU the target's processes and this client spent on them."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.samples: list[Sample] = []
        self.failures: Counter[str] = Counter()
        loop = asyncio.get_running_loop()
        self.offset = time.time() - loop.time()  # loop clock -> wall clock, for the stream entry ids
        self.loop = loop
        self.cpu_before = target.cpu()
        self.client_cpu = time.process_time()
        self.started = loop.time()

    async def one(self, due: float) -> None:
        try:
            status, headers, _body = await self.target.call()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, RuntimeError, ValueError, IndexError) as exc:
            status, headers = 0, {}
            self.failures[type(exc).__name__] += 1
        if status not in {0, 200}:
            self.failures[f"HTTP {status}"] += 1
        ids = headers.get(IDS_HEADER, b"").decode()
        self.samples.append(Sample(due + self.offset, self.loop.time() - due, status, ids))

    def result(self, offered: float | None) -> dict[str, Any]:
        wall = self.loop.time() - self.started
        after = self.target.cpu()
        used = {name: after[name] - self.cpu_before.get(name, 0.0) for name in after}
        server_cpu = sum(used.values())
        client_cpu = time.process_time() - self.client_cpu
        latencies = sorted(s.latency for s in self.samples)
        ok = sum(1 for s in self.samples if s.status == 200)
        calls = len(self.samples)

        def pick(q: float) -> float:
            return 1000 * latencies[min(calls - 1, int(q * calls))] if calls else float("nan")

        return {
            "offered/s": offered if offered is not None else float("nan"),
            "calls": calls,
            "achieved/s": ok / wall,
            "p50 ms": pick(0.5),
            "p90 ms": pick(0.9),
            "p99 ms": pick(0.99),
            "max ms": 1000 * latencies[-1] if calls else float("nan"),
            "errors": calls - ok,
            "server CPU ms/call": 1000 * server_cpu / max(1, calls),
            "server CPU %": 100 * server_cpu / wall,
            "client CPU %": 100 * client_cpu / wall,
            **{f"{name} CPU ms/call": 1000 * cpu / max(1, calls) for name, cpu in used.items()},
            "failures": dict(self.failures),
        }


async def open_loop(target: Target, rate: float, seconds: float, *, poisson: bool, seed: int) -> Meter:
    """`rate` calls a second for `seconds`, each sent at its scheduled time; latency from that time."""
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    meter = Meter(target)
    tasks: list[asyncio.Task[None]] = []
    due = loop.time() + 0.01
    for _ in range(int(rate * seconds)):
        due += rng.expovariate(rate) if poisson else 1 / rate
        if (delay := due - loop.time()) > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(meter.one(due)))
    await asyncio.gather(*tasks)
    return meter


async def closed_loop(target: Target, concurrency: int, seconds: float) -> Meter:
    """`concurrency` clients, each calling again as soon as its answer is read, for `seconds`."""
    loop = asyncio.get_running_loop()
    meter = Meter(target)
    end = loop.time() + seconds

    async def client() -> None:
        while loop.time() < end:
            await meter.one(loop.time())

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return meter
