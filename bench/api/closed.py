"""Closed loops: each concurrency level, `repeat` rounds alternating the targets (the machine's drift hits both
alike). A target's throughput is its best level's median round: fleetgate's pipeline of four processes is bound by
latency at a concurrency where Prism's one node process is already bound by its core, so a single level would
compare a latency with a capacity."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.api.client import Target
from bench.api.load import closed_loop
from bench.api.stages import breakdown, stream_times
from services.settings import Settings

Stages = dict[str, dict[str, float]]


@dataclass
class Level:
    """One concurrency level's rounds: per target, each round's result (and fleetgate's stages)."""

    concurrency: int
    rounds: dict[str, list[tuple[dict[str, Any], Stages]]] = field(default_factory=dict)

    def median_run(self, target: str) -> tuple[dict[str, Any], Stages]:
        results = self.rounds[target]
        return sorted(results, key=lambda r: r[0]["achieved/s"])[len(results) // 2]

    def ratios(self, figure: str) -> list[float]:
        """fleetgate's figure over Prism's, per round."""
        pairs = zip(self.rounds["fleetgate"], self.rounds["prism"], strict=True)
        return [f[figure] / p[figure] for (f, _), (p, _) in pairs]


async def sweep(
    targets: Sequence[Target],
    levels: Sequence[int],
    *,
    repeat: int,
    seconds: float,
    settings: Settings,
    check: Callable[[], None],
) -> list[Level]:
    measured = []
    for concurrency in levels:
        level = Level(concurrency, {t.name: [] for t in targets})
        for round_number in range(1, repeat + 1):
            for target in targets:
                since = time.time()
                meter = await closed_loop(target, concurrency, seconds)
                result = meter.result(None)
                stages = (
                    breakdown(meter.samples, await stream_times(settings, since)) if target.name == "fleetgate" else {}
                )
                level.rounds[target.name].append((result, stages))
                print(f"{target.name} closed x{concurrency} round {round_number}: {result}", flush=True)
                check()
        measured.append(level)
    return measured


def summary(levels: Sequence[Level]) -> dict[str, Any]:
    """Per level the ratios' medians and rounds; the throughput ratio of each target's best level."""
    best = {
        name: max(levels, key=lambda level: level.median_run(name)[0]["achieved/s"]) for name in ("fleetgate", "prism")
    }
    fleetgate, prism = (best[n].median_run(n)[0] for n in ("fleetgate", "prism"))
    return {
        "best concurrency": {name: level.concurrency for name, level in best.items()},
        "closed-loop throughput fleetgate/prism": fleetgate["achieved/s"] / prism["achieved/s"],
        "closed-loop server CPU per call fleetgate/prism": fleetgate["server CPU ms/call"]
        / prism["server CPU ms/call"],
        "by concurrency": {
            level.concurrency: {
                "throughput fleetgate/prism": statistics.median(level.ratios("achieved/s")),
                "throughput fleetgate/prism, rounds": level.ratios("achieved/s"),
                "server CPU per call fleetgate/prism": statistics.median(level.ratios("server CPU ms/call")),
            }
            for level in levels
        },
    }
