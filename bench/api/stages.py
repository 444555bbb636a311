"""Where fleetgate's time goes: each call's stages from its stream entries' ids (Redis's clock, ms)."""

from __future__ import annotations

import re
import statistics
from typing import cast

from bench.api.load import Sample
from services.redis_client import connect
from services.settings import Settings


async def stream_times(settings: Settings, since: float) -> dict[str, dict[str, float]]:
    """request id -> the ms of its request, decision and response entries (their entry ids) from `since` (wall
    clock, s) on. Read after each run: the requests stream does not keep its entries for long."""
    redis = connect(settings.redis_url)
    shard = settings.keys.all_shards[0]
    times: dict[str, dict[str, float]] = {}
    marker = re.compile(rb'"request_id":"([^"]+)"')
    try:
        for stage, stream in (
            ("request", shard.requests),
            ("decision", shard.decisions),
            ("response", shard.responses),
        ):
            last = f"{int(since * 1000) - 1000}-0"
            first = True
            while True:
                entries = cast(
                    "list[tuple[bytes, dict[bytes, bytes]]]", await redis.xrange(stream, min=last, count=10_000)
                )
                if not first:
                    entries = entries[1:]
                first = False
                if not entries:
                    break
                for entry_id, fields in entries:
                    if (found := marker.search(fields.get(b"data", b""))) is not None:
                        times.setdefault(found[1].decode(), {})[stage] = int(entry_id.split(b"-")[0])
                last = entries[-1][0].decode()
    finally:
        await redis.aclose()
    return times


STAGES = (
    ("scheduled -> request XADD (client, HTTP, token, connection, outbox)", "scheduled", "request"),
    ("request -> decision (gatekeeper)", "request", "decision"),
    ("decision -> response (vehicles service)", "decision", "response"),
    ("response -> answer read (reader, body, HTTP)", "response", "done"),
)


def breakdown(samples: list[Sample], times: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per stage p50/p90/p99 (ms) over the calls that have all three entries; also those calls' latency split at p99."""
    rows: list[dict[str, float]] = []
    for sample in samples:
        entries = times.get(sample.request_ids)
        if sample.status != 200 or entries is None or len(entries) != 3:
            continue
        rows.append(
            {"scheduled": sample.scheduled * 1000, "done": (sample.scheduled + sample.latency) * 1000, **entries}
        )
    result: dict[str, dict[str, float]] = {}
    if not rows:
        return result
    slow = sorted(rows, key=lambda r: r["done"] - r["scheduled"])[int(0.99 * len(rows)) :]
    for name, start, end in STAGES:
        spans = sorted(r[end] - r[start] for r in rows)

        def pick(q: float, spans: list[float] = spans) -> float:
            return spans[min(len(spans) - 1, int(q * len(spans)))]

        result[name] = {"p50 ms": pick(0.5), "p90 ms": pick(0.9), "p99 ms": pick(0.99),
                        "mean of slowest 1 % ms": statistics.fmean(r[end] - r[start] for r in slow)}  # fmt: skip
    total = sorted(r["done"] - r["scheduled"] for r in rows)
    slowest = statistics.fmean(r["done"] - r["scheduled"] for r in slow)
    result["whole call"] = {"p50 ms": total[len(total) // 2], "p90 ms": total[int(0.9 * len(total))],
                            "p99 ms": total[min(len(total) - 1, int(0.99 * len(total)))],
                            "mean of slowest 1 % ms": slowest}  # fmt: skip
    return result
