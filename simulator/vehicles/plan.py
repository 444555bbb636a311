"""A vehicle's daily life: when it leaves for where, and when it is out of mobile coverage, per local day.

Each day's plan is drawn from a generator keyed by (vehicle, seed, day) alone, never from the state, so the
same day has the same plan however the clock got there. Commuters drive to work and back on most weekdays
(sometimes with an evening errand); other days bring zero to two errands, each out and back. Places are
offsets from an anchor (home, see life.py), so a vehicle moved far from home runs its errands where it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from simulator.vehicles.profile import Profile, distance_km, offset, rng_for

DAY_S = 86_400
ROAD_FACTOR = 1.3
"""Road distance over straight-line distance."""
HOME = (0, 0)


@dataclass(frozen=True, slots=True)
class Departure:
    t: float
    place: tuple[int, int]
    """Where to, as a (lat, lon) offset in microdegrees from the anchor: HOME is (0, 0)."""
    kph: int
    """Average speed of the trip."""


@dataclass(frozen=True, slots=True)
class DayPlan:
    departures: tuple[Departure, ...]
    gaps: tuple[tuple[float, float], ...]
    """Spans out of mobile coverage (a parked vehicle is unreachable during them)."""


def local_day(profile: Profile, t: float) -> int:
    """The vehicle's local day number (days since 1970-01-01, local standard time)."""
    return math.floor((t + profile.utc_offset_s) / DAY_S)


def day_start(profile: Profile, day: int) -> float:
    """Unix time of the local midnight that starts `day`."""
    return float(day * DAY_S - profile.utc_offset_s)


@lru_cache(maxsize=16_384)
def day_plan(profile: Profile, day: int) -> DayPlan:
    """The day's departures (in time order, all within the day) and coverage gaps."""
    rng = rng_for(profile.key, "day", day)
    midnight = day_start(profile, day)
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0

    def at(hours: float) -> float:
        return midnight + round(hours * 3600)

    def errand(min_km: float, max_km: float) -> tuple[tuple[int, int], int, float]:
        """A place, the speed to it, and the hours the trip there takes."""
        lat, lon = offset(*profile.home, rng.uniform(min_km, max_km), rng.uniform(0, 360))
        place = (lat - profile.home[0], lon - profile.home[1])
        km = distance_km(profile.home, (lat, lon)) * ROAD_FACTOR
        kph = rng.randint(28, 45) if km < 15 else rng.randint(45, 75)
        return place, kph, km / kph

    departures: list[Departure] = []
    if weekday < 5 and profile.commuter and rng.random() < 0.92:
        work = (profile.work[0] - profile.home[0], profile.work[1] - profile.home[1])
        kph = rng.randint(32, 60)
        departures.append(Departure(at(rng.uniform(6.75, 9.0)), work, kph))
        back = rng.uniform(16.25, 18.75)
        departures.append(Departure(at(back), HOME, kph))
        if rng.random() < 0.35:
            place, kph, hours = errand(1.5, 10)
            out = back + 1.5 + rng.uniform(0, 1.5)
            departures += [
                Departure(at(out), place, kph),
                Departure(at(out + hours + rng.uniform(0.3, 1.5)), HOME, kph),
            ]
    else:
        clock = rng.uniform(8.5, 12.0)
        for _ in range(rng.choice((0, 1, 1, 2)) if weekday >= 5 or not profile.commuter else 0):
            place, kph, hours = errand(2, 35)
            back = clock + hours + rng.uniform(0.5, 3.0)
            departures += [Departure(at(clock), place, kph), Departure(at(back), HOME, kph)]
            clock = back + hours + rng.uniform(1.0, 3.0)
    gaps: tuple[tuple[float, float], ...] = ()
    if rng.random() < 0.2:
        start = at(rng.uniform(0, 22.5))
        gaps = ((start, start + round(rng.uniform(10, 90) * 60)),)
    return DayPlan(tuple(departures), gaps)


def coverage_gap(profile: Profile, t: float) -> tuple[float, float] | None:
    """The planned coverage gap around `t`, if any."""
    for start, end in day_plan(profile, local_day(profile, t)).gaps:
        if start <= t < end:
            return start, end
    return None


def planned_km(profile: Profile, day: int) -> float:
    """The road distance the day's plan drives, from home back home."""
    here, total = profile.home, 0.0
    for departure in day_plan(profile, day).departures:
        there = (profile.home[0] + departure.place[0], profile.home[1] + departure.place[1])
        total += distance_km(here, there) * ROAD_FACTOR
        here = there
    return total


@lru_cache(maxsize=65_536)
def yearly_km(profile: Profile) -> float:
    """The distance the vehicle's plans drive in a year, sampled over two weeks of them: a vehicle's first state
    needs it (its odometer), and eight weeks made that 4 ms a vehicle, 400 s of CPU for a fleet of 100,000."""
    return sum(planned_km(profile, day) for day in range(_SAMPLE_START, _SAMPLE_START + 14)) / 14 * 365.25


_SAMPLE_START = 19_000  # a day in 2022: any fixed stretch of plans is as typical as another
