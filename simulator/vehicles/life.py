"""A vehicle's life in simulated time: its first state, and lazy evolution to any later time.

`advance(state, vehicle, now, seed)` applies, in time order, every event due in (state.at, now]: the day plans'
departures (plan.py) and the events the state itself has pending (the current trip's arrival; after an arrival,
the driver getting out and locking, then plugging in). Events are drawn from (vehicle, seed, day) or from the
state, never from when advance() is called, and between events nothing is stored (physics.py projects), so
advancing to t in one call or in many gives the same state.

A vehicle left alone longer than MAX_REPLAY_DAYS is not replayed day by day: it is put back home with the
distance it would have driven, and only the last REPLAY_TAIL_DAYS are replayed. That keeps a call's cost bounded
(and breaks the one-call-or-many equality only across such gaps).
"""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter

from schemas.vehicle import Vehicle
from simulator.vehicles.charging import plug_in, unplug
from simulator.vehicles.evolve import evolve
from simulator.vehicles.physics import settle, soc_at
from simulator.vehicles.plan import (
    DAY_S,
    ROAD_FACTOR,
    Departure,
    day_plan,
    day_start,
    local_day,
    planned_km,
    yearly_km,
)
from simulator.vehicles.profile import Profile, bearing_deg, distance_km, profile_for, rng_for
from simulator.vehicles.state import (
    BLOCKS_LOCKING,
    CHARGE_PORT,
    DOORS,
    DRIVER_DOOR,
    FRONT_TRUNK,
    REAR_TRUNK,
    STEP_NONE,
    STEP_PLUG,
    STEP_SECURE,
    TAILGATE,
    ChargeRecord,
    Trip,
    VehicleState,
    bit,
)

MAX_REPLAY_DAYS = 30
REPLAY_TAIL_DAYS = 3
MAX_SUMMED_DAYS = 366
"""A longer gap's distance is extrapolated from its first year of plans."""
FAR_FROM_HOME_KM = 300
"""Further than this from home, the daily plan's places are taken around where the vehicle is."""
HOME_RADIUS_KM = 0.2
PUBLIC_CHARGE_BELOW_PCT = 20
"""An EV this low plugs in wherever it parks."""
REFUEL_BELOW = 1200
"""A fuel level (hundredths of a percent) under which the driver fills up on the way."""
PHEV_RESERVE = 1500
"""A plug-in hybrid drives on electricity down to this state of charge, then on fuel."""
MIN_TRIP_KM = 0.2
_CLOSED_TO_DRIVE = bit(REAR_TRUNK) | bit(FRONT_TRUNK) | bit(TAILGATE) | bit(CHARGE_PORT)
_DOOR_BITS = sum(bit(n) for n in DOORS)


def initial_state(vehicle: Vehicle, seed: int, now: float) -> VehicleState:
    """The vehicle at `now`: at home two nights before, then its life replayed to `now` (same arguments, same state)."""
    profile = profile_for(vehicle, seed)
    t = day_start(profile, local_day(profile, now) - 2) + 3 * 3600
    start = at_home(profile, seed, t, odometer_m(vehicle, profile, t), profile.default_limit)
    return advance(start, vehicle, max(now, t), seed)


def advance(state: VehicleState, vehicle: Vehicle, now: float, seed: int) -> VehicleState:
    """The vehicle's state at simulated time `now` (unchanged if `now` is not after `state.at`)."""
    if seed != state.seed:
        raise ValueError(f"this state was drawn with seed {state.seed}, not {seed}")
    if not math.isfinite(now):
        raise ValueError(f"simulated time must be a finite number of seconds, got {now}")
    if now <= state.at:
        return state
    profile = profile_for(vehicle, seed)
    if now - state.at > MAX_REPLAY_DAYS * DAY_S:
        state = _fast_forward(state, profile, now - REPLAY_TAIL_DAYS * DAY_S)
    start = state.at
    departures = [
        d
        for day in range(local_day(profile, start) - 1, local_day(profile, now) + 1)
        for d in day_plan(profile, day).departures
        if start < d.t <= now
    ]
    if len(departures) > 1:  # mostly none in a read's few seconds
        departures.sort(key=_departure_time)
    queue = iter(departures)
    departure = next(queue, None)
    while True:
        pending = _pending(state, profile)
        if pending is not None and pending <= now and (departure is None or pending <= departure.t):
            state = _on_pending(state, profile, pending)
        elif departure is not None:
            state = _depart(state, profile, departure)
            departure = next(queue, None)
        else:
            return evolve(state, at=now)


_departure_time = attrgetter("t")


def odometer_m(vehicle: Vehicle, profile: Profile, t: float) -> int:
    """A plausible odometer for the model year: delivered the October before it, driven as its plans drive since."""
    delivered = calendar.timegm((vehicle.year - 1, 10, 1, 0, 0, 0))
    years = max(0.01, (t - delivered) / (365.25 * DAY_S))
    return round(years * yearly_km(profile) * 1000)


def at_home(profile: Profile, seed: int, t: float, odo: int, limit: int) -> VehicleState:
    """The vehicle parked at home since the evening before `t`, asleep, plugged in or not by its owner's habit."""
    rng = rng_for(profile.key, "home", t)
    plugged = profile.has_battery and rng.random() < 0.6
    soc = limit * 100 if plugged else rng.randint(35, 90) * 100
    records: tuple[ChargeRecord, ...] = ()
    if profile.has_battery:
        records = (ChargeRecord(t - 8 * 3600, t - 3 * 3600, max(1000, soc - 3000), soc, *profile.home),)
    return VehicleState(
        seed=seed,
        at=t,
        t0=t,
        since=t - rng.randint(5 * 3600, 9 * 3600),
        lat=profile.home[0],
        lon=profile.home[1],
        heading=rng.randrange(360),
        odo=odo,
        soc=soc if profile.has_battery else 0,
        fuel=rng.randint(25, 95) * 100 if profile.has_tank else 0,
        lv=profile.lv_base,
        limit=limit,
        plugged=plugged,
        charge_on=plugged,
        charged_at=t - 3 * 3600 if profile.has_battery else None,
        records=records,
        open=bit(CHARGE_PORT) if plugged else 0,
        awake=t - 3 * 3600,
        alerts=profile.alerts,
        alerts_at=t - rng.randint(1, 60) * DAY_S,
    )


def _fast_forward(state: VehicleState, profile: Profile, t: float) -> VehicleState:
    """Skip a long gap: home, with the distance the gap's plans drive (up to a year of them, then their mean)."""
    first, last = local_day(profile, state.at), local_day(profile, t)
    counted = range(first, min(last, first + MAX_SUMMED_DAYS))
    km = sum(planned_km(profile, day) for day in counted)
    driven = round(km * (last - first) / max(1, len(counted)) * 1000)
    fresh = at_home(profile, state.seed, t, state.odo + driven, state.limit)
    return evolve(
        fresh,
        target=state.target,
        schedules=state.schedules,
        schedule_n=state.schedule_n,
        offline_since=state.offline_since,
        remote_off_since=state.remote_off_since,
        tires=state.tires,
        alerts=state.alerts,
        alerts_at=state.alerts_at,
        records=state.records or fresh.records,
    )


@dataclass(frozen=True, slots=True)
class _Habits:
    """What the driver does after arriving at `since`: drawn per arrival."""

    out_s: float
    """Seconds until the driver is out, door closed (and the car locked, if `locks`)."""
    plug_s: float
    """Seconds after arriving until an EV is plugged in, if it is."""
    locks: bool


@lru_cache(maxsize=16_384)
def _habits(profile: Profile, since: float) -> _Habits:
    """Drawn once per arrival: every advance until the driver is out and has plugged in asks (seeding the generator
    is 4 us)."""
    rng = rng_for(profile.key, "arrival", since)
    out = rng.randint(20, 120)
    return _Habits(out, out + rng.randint(60, 240), rng.random() < 0.96)


def _pending(state: VehicleState, profile: Profile) -> float | None:
    """When the state's own next event is due (None if it has none)."""
    if state.trip is not None:
        return state.trip.arrive
    if state.step == STEP_SECURE:
        return state.since + _habits(profile, state.since).out_s
    if state.step == STEP_PLUG:
        return state.since + _habits(profile, state.since).plug_s
    return None


def _on_pending(state: VehicleState, profile: Profile, t: float) -> VehicleState:
    if state.trip is not None:
        return _arrive(state, profile, t)
    if state.step == STEP_SECURE:
        opened = state.open & ~bit(DRIVER_DOOR)
        blocked = any(opened & bit(n) for n in BLOCKS_LOCKING)
        locks = _habits(profile, state.since).locks and not blocked
        step = STEP_PLUG if profile.has_battery else STEP_NONE
        return evolve(state, open=opened, locked=locks or state.locked, step=step, awake=t)
    state = evolve(state, step=STEP_NONE)
    if state.plugged or not profile.has_battery:
        return state
    state = settle(state, profile, t)
    home = distance_km((state.lat, state.lon), profile.home) < HOME_RADIUS_KM
    soc = state.soc / 100
    if (home and soc < profile.plug_below_pct) or soc < PUBLIC_CHARGE_BELOW_PCT:
        return plug_in(state, t)
    return state


def _depart(state: VehicleState, profile: Profile, departure: Departure) -> VehicleState:
    """Leave for the departure's place (or the navigation destination), if parked and able to."""
    if state.trip is not None:
        return state  # still on a longer trip: this one is skipped
    here = (state.lat, state.lon)
    anchor = profile.home if distance_km(here, profile.home) <= FAR_FROM_HOME_KM else here
    target = state.dest or (anchor[0] + departure.place[0], anchor[1] + departure.place[1])
    t = departure.t
    if distance_km(here, target) < MIN_TRIP_KM:
        return evolve(state, dest=None) if state.dest else state
    soc = soc_at(state, profile, t)
    if (profile.has_battery and not profile.has_tank and soc < 300) or not (profile.has_battery or state.fuel >= 100):
        return state  # out of energy: it stays
    state = settle(state, profile, t)
    if state.plugged:
        state = unplug(state, t)
    return start_trip(state, profile, target, t, departure.kph)


def start_trip(state: VehicleState, profile: Profile, target: tuple[int, int], t: float, kph: int) -> VehicleState:
    """Driving to `target` from the state's position (the state settled at t)."""
    here = (state.lat, state.lon)
    road_km = distance_km(here, target) * ROAD_FACTOR
    electric_km = 0.0
    if profile.has_battery:
        reserve = PHEV_RESERVE if profile.has_tank else 0
        electric_km = min(road_km, max(0, state.soc - reserve) / 10_000 * profile.capacity_kwh * profile.km_per_kwh)
    fuel_km = road_km - electric_km if profile.has_tank else 0.0
    dsoc = min(state.soc, round(electric_km / profile.km_per_kwh / profile.capacity_kwh * 10_000))
    dfuel = min(state.fuel, round(fuel_km * profile.l_per_100km / 100 / profile.tank_l * 10_000))
    trip = Trip(target[0], target[1], t + round(road_km / kph * 3600), round(road_km * 1000), dsoc, dfuel, kph)
    return evolve(
        state,
        trip=trip,
        since=t if state.trip is None else state.since,
        heading=bearing_deg(here, target) if road_km else state.heading,
        open=state.open & ~(_DOOR_BITS | _CLOSED_TO_DRIVE),
        locked=True,  # locks itself as it drives off
        awake=t,
        step=STEP_NONE,
        climate_since=None,
    )


def _arrive(state: VehicleState, profile: Profile, t: float) -> VehicleState:
    trip = state.trip
    assert trip is not None
    state = settle(state, profile, t)
    reached = (trip.to_lat, trip.to_lon)
    return evolve(
        state,
        trip=None,
        lat=reached[0],
        lon=reached[1],
        fuel=10_000 if profile.has_tank and state.fuel < REFUEL_BELOW else state.fuel,
        dest=None if state.dest == reached else state.dest,
        since=t,
        awake=t,
        open=state.open | bit(DRIVER_DOOR),
        locked=False,
        step=STEP_SECURE,
        climate_since=None,
        defrost=0,
        wheel_heat=False,
        lv=max(state.lv, profile.lv_base),
    )
