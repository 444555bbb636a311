"""A latency histogram in the manner of HdrHistogram: constant memory, about 1 % relative precision.

Values (milliseconds) go into logarithmic buckets 1 % wide from 10 µs up; a percentile is the upper edge of the
bucket that holds it, so it never understates. Merging is adding counts.
"""

from __future__ import annotations

import math
from collections import Counter

_FLOOR_MS = 0.01
_GROWTH = 1.01
_LOG_GROWTH = math.log(_GROWTH)


class LatencyHistogram:
    def __init__(self) -> None:
        self.buckets: Counter[int] = Counter()
        self.count = 0
        self.max = 0.0

    def record(self, value_ms: float) -> None:
        value_ms = max(value_ms, _FLOOR_MS)  # clocks of two processes: a request can seem decided "before" sent
        self.buckets[int(math.log(value_ms / _FLOOR_MS) / _LOG_GROWTH)] += 1
        self.count += 1
        self.max = max(self.max, value_ms)

    def merge(self, other: LatencyHistogram) -> None:
        self.buckets.update(other.buckets)
        self.count += other.count
        self.max = max(self.max, other.max)

    def percentile(self, quantile: float) -> float:
        """The value at `quantile` (0..1) in ms, 0.0 when empty."""
        if not self.count:
            return 0.0
        rank = max(1, math.ceil(quantile * self.count))
        seen = 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            if seen >= rank:
                return min(self.max, _FLOOR_MS * _GROWTH ** (bucket + 1))
        return self.max
