"""Simulated time: a clock that runs `speed` times as fast as real time from a fixed pair of origins."""

from __future__ import annotations

import time
from dataclasses import dataclass


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
