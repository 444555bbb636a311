"""The vehicle at an instant: its stored state projected to time t (position, energy, charging, sleep, cabin).

`now_at()` derives what a read reports; `settle()` stores the projection (before an event or a command changes
how the quantities evolve). Between two events the projection is a closed form of (state, t), never a sum of
steps, so one read at t or many reads before it see the same vehicle.
"""

from __future__ import annotations

import math
import random
from functools import lru_cache
from typing import NamedTuple

from simulator.vehicles.evolve import evolve
from simulator.vehicles.plan import coverage_gap, local_day
from simulator.vehicles.profile import Profile
from simulator.vehicles.state import VehicleState

CLIMATE_RUN_S = 1800
"""Climate started by command runs this long (remote climate switches itself off, like most makes')."""
CHARGE_EFFICIENCY = 0.9
LV_DRAIN_PER_DAY = 5
"""A parked vehicle's 12 V battery loses half a percent a day (tenths of a percent)."""
SPEED_RAMP_S = 60


class Now(NamedTuple):
    """The vehicle at t. A NamedTuple, not a frozen dataclass: a read builds two, and the dataclass's __init__ (an
    object.__setattr__ per field) was 1.3 us of now_at()'s 5.6. What decides whether a read is answered (asleep,
    charging, coverage) is computed at once; where the vehicle is, its energy and the temperatures when a body
    asks (a body reads one or two of them: computing them all made a read's answer 24.9 us instead of 13.4)."""

    t: float
    driving: bool
    charging: bool
    full: bool
    """Plugged in at or above the charge limit."""
    climate: bool
    asleep: bool
    asleep_since: float | None
    gap: tuple[float, float] | None
    """The coverage gap the parked vehicle is in (None when covered or driving)."""
    state: VehicleState
    profile: Profile
    end: float | None
    """full_at(state, profile)."""

    @property
    def reachable(self) -> bool:
        return self.gap is None

    @property
    def lat(self) -> float:
        state, trip = self.state, self.state.trip
        if trip is None:
            return state.lat / 1e6
        return (state.lat + (trip.to_lat - state.lat) * _progress(state, self.t)) / 1e6

    @property
    def lon(self) -> float:
        state, trip = self.state, self.state.trip
        if trip is None:
            return state.lon / 1e6
        return (state.lon + (trip.to_lon - state.lon) * _progress(state, self.t)) / 1e6

    @property
    def heading(self) -> int:
        return self.state.heading

    @property
    def kph(self) -> float:
        state, trip = self.state, self.state.trip
        return 0.0 if trip is None else _speed(trip.kph, self.t, state.since, trip.arrive)

    @property
    def odo_km(self) -> float:
        state, trip = self.state, self.state.trip
        if trip is None:
            return state.odo / 1000
        return (state.odo + trip.meters * _progress(state, self.t)) / 1000

    @property
    def soc(self) -> float:
        """Percent."""
        state, trip = self.state, self.state.trip
        if trip is None:
            return _parked_soc(state, self.profile, self.t, self.end) / 100
        return (state.soc - trip.dsoc * _progress(state, self.t)) / 100

    @property
    def fuel(self) -> float:
        """Percent."""
        state, trip = self.state, self.state.trip
        if trip is None:
            return state.fuel / 100
        return (state.fuel - trip.dfuel * _progress(state, self.t)) / 100

    @property
    def lv(self) -> float:
        """12 V battery, percent."""
        state = self.state
        if state.trip is None:
            return max(0.0, state.lv - LV_DRAIN_PER_DAY * max(0.0, self.t - state.t0) / 86_400) / 10
        return state.lv / 10

    @property
    def outside(self) -> float:
        return outside_c(self.profile, self.t)

    @property
    def inside(self) -> float:
        return _inside_c(self)


def charge_rate(profile: Profile) -> float:
    """State of charge gained per second of charging, hundredths of a percent."""
    return profile.charger_kw * CHARGE_EFFICIENCY / profile.capacity_kwh * 10_000 / 3600


def full_at(state: VehicleState, profile: Profile) -> float | None:
    """When the charging under way reaches the limit (None if the vehicle is not set to charge)."""
    if state.driving or not (state.plugged and state.charge_on and profile.has_battery):
        return None
    room = state.limit * 100 - state.soc
    return state.t0 + max(0, room) / charge_rate(profile)


def soc_at(state: VehicleState, profile: Profile, t: float) -> float:
    """State of charge at t, hundredths of a percent."""
    if state.trip is not None:
        return state.soc - state.trip.dsoc * _progress(state, t)
    return _parked_soc(state, profile, t, full_at(state, profile))


def _parked_soc(state: VehicleState, profile: Profile, t: float, end: float | None) -> float:
    if end is None or state.soc >= state.limit * 100:
        return float(state.soc)
    return state.soc + charge_rate(profile) * (min(t, end) - state.t0)


def _progress(state: VehicleState, t: float) -> float:
    trip = state.trip
    assert trip is not None
    span = trip.arrive - state.t0
    return 1.0 if span <= 0 else min(1.0, max(0.0, (t - state.t0) / span))


def settle(state: VehicleState, profile: Profile, t: float) -> VehicleState:
    """The state with its continuous quantities as they are at t, and t0 = t."""
    if state.trip is None:
        lv = max(0, round(state.lv - LV_DRAIN_PER_DAY * max(0.0, t - state.t0) / 86_400))
        end, charged_at = full_at(state, profile), state.charged_at
        if end is not None and end <= t and state.soc < state.limit * 100:
            charged_at = float(math.ceil(end))  # it reached the limit since t0: then it stopped charging
        return evolve(state, t0=t, soc=round(soc_at(state, profile, t)), lv=lv, charged_at=charged_at)
    trip, f = state.trip, _progress(state, t)
    moved, dsoc, dfuel = round(trip.meters * f), round(trip.dsoc * f), round(trip.dfuel * f)
    return evolve(
        state,
        t0=t,
        lat=round(state.lat + (trip.to_lat - state.lat) * f),
        lon=round(state.lon + (trip.to_lon - state.lon) * f),
        odo=state.odo + moved,
        soc=state.soc - dsoc,
        fuel=state.fuel - dfuel,
        trip=evolve(trip, meters=trip.meters - moved, dsoc=trip.dsoc - dsoc, dfuel=trip.dfuel - dfuel),
    )


def now_at(state: VehicleState, profile: Profile, t: float) -> Now:
    """What the vehicle is like at t (t at or after state.t0)."""
    trip = state.trip
    end = None if trip is not None else full_at(state, profile)  # full_at() is None while driving
    charging = end is not None and t < end and state.soc < state.limit * 100
    wake = state.awake
    if end is not None and not charging:
        wake = max(wake, end)
    climate_end = None if state.climate_since is None else state.climate_since + CLIMATE_RUN_S
    climate = trip is not None or (climate_end is not None and t < climate_end)
    if climate_end is not None and not climate:
        wake = max(wake, climate_end)
    asleep_since = None if trip is not None or charging or climate else wake + profile.sleep_after_s
    if state.offline_since is not None:
        gap: tuple[float, float] | None = (state.offline_since, math.inf)
    else:
        gap = None if trip is not None else coverage_gap(profile, t)
    return Now(
        t,
        trip is not None,
        charging,
        state.plugged and trip is None and (state.soc >= state.limit * 100 or (end is not None and t >= end)),
        climate,
        asleep_since is not None and t >= asleep_since,
        asleep_since,
        gap,
        state,
        profile,
        end,
    )


def _speed(average: int, t: float, departed: float, arrive: float) -> float:
    """The speed at t: the trip's average with traffic in it, slower as it starts and ends."""
    wobble = 0.7 + 0.6 * ((int(t) // 15 * 2_654_435_761) % 1000) / 1000
    ramp = min(1.0, max(0.0, t - departed) / SPEED_RAMP_S, max(0.0, arrive - t) / SPEED_RAMP_S)
    return round(average * wobble * ramp, 1)


@lru_cache(maxsize=4096)
def _weather_noise(city: str, day: int) -> float:
    return random.Random(f"weather|{city}|{day}").uniform(-3, 3)


def outside_c(profile: Profile, t: float) -> float:
    """Outside temperature: the city's season, the hour of the day, and the day's weather."""
    city = profile.city
    day_of_year = (t / 86_400) % 365.25
    hour = ((t + profile.utc_offset_s) % 86_400) / 3600
    season = -city.swing_c * math.cos(2 * math.pi * (day_of_year - 15) / 365.25)
    daily = 4 * math.cos(2 * math.pi * (hour - 15) / 24)
    return round(city.mean_c + season + daily + _weather_noise(city.name, local_day(profile, t)), 1)


def _solar_gain(profile: Profile, t: float) -> float:
    hour = ((t + profile.utc_offset_s) % 86_400) / 3600
    return max(0.0, 9 * math.sin(math.pi * (hour - 7) / 12)) if 7 < hour < 19 else 0.0


def _inside_c(now: Now) -> float:
    """The cabin: towards the target while the climate runs, then back towards outside plus the sun's heat."""
    state, t = now.state, now.t
    ambient = now.outside + _solar_gain(now.profile, t)
    target = state.target / 10
    if now.climate:
        on = state.since if state.driving or state.climate_since is None else state.climate_since
        return round(target + (ambient - target) * math.exp(-max(0.0, t - on) / 600), 1)
    climate_end = None if state.climate_since is None else state.climate_since + CLIMATE_RUN_S
    ended = max(state.since, climate_end or state.since)
    return round(ambient + (target - ambient) * math.exp(-max(0.0, t - ended) / 1800), 1)
