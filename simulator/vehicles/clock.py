"""Simulated time: a clock that runs `speed` times as fast as real time from a fixed pair of origins, and the
durations faults and scenarios are written in ("90s", "10m", "1h30m")."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


@dataclass(frozen=True, slots=True, kw_only=True)
class SimClock:
    """Simulated time = `epoch_sim` + (real time - `epoch_real`) * `speed`, all in unix seconds.

    A clock is a value: the vehicles service and whatever else reads vehicle state share one (same origins, same
    speed), so the same real instant is the same simulated instant everywhere.
    """

    speed: float = 1.0
    epoch_real: float
    epoch_sim: float

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ValueError(f"a clock's speed must be above 0, got {self.speed}")

    @classmethod
    def starting_now(cls, speed: float = 1.0, epoch_sim: float | None = None) -> SimClock:
        """A clock whose simulated time starts now, at `epoch_sim` (default: the real time now)."""
        real = time.time()
        return cls(speed=speed, epoch_real=real, epoch_sim=real if epoch_sim is None else epoch_sim)

    def now(self, real_now: float | None = None) -> float:
        """The simulated unix time at `real_now` (default: the real time now)."""
        real = time.time() if real_now is None else real_now
        return self.epoch_sim + (real - self.epoch_real) * self.speed


def parse_duration(text: str) -> float:
    """Seconds in a duration such as "90s", "10m", "2h", "1h30m", "250ms"; ValueError (one line) otherwise."""
    parts = _PART.findall(text)
    if not text or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"bad duration {text!r}: expected a number and a unit (ms, s, m, h, d), as in 90s, 10m, 1h30m")
    return sum(float(number) * _UNITS[unit] for number, unit in parts)
