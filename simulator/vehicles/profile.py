"""A vehicle's constants: what never changes for it (home, battery, tank, charger, trim...), derived, not stored.

`profile_for(vehicle, seed)` draws them from a generator keyed by (seed, vehicle id): the same vehicle and seed
give the same profile on any machine, so the stored state holds only what evolves.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from functools import cache

from schemas.catalog import get_catalog
from schemas.powertrain import Powertrain
from schemas.vehicle import Vehicle
from simulator.vehicles import models
from simulator.vehicles.models import City
from simulator.vehicles.signal_map import diagnostics

_ELECTRIC = frozenset({Powertrain.PHEV, Powertrain.BEV})
_COMBUSTION = frozenset({Powertrain.ICE, Powertrain.HEV, Powertrain.PHEV})
_KM_PER_DEGREE = 111.32


def rng_for(key: bytes, *parts: object) -> random.Random:
    """A generator seeded by the vehicle's key and `parts`: the same on any machine and Python version."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), key=key, digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def offset(lat_udeg: int, lon_udeg: int, km: float, bearing_deg: float) -> tuple[int, int]:
    """The point `km` away from (lat, lon) (microdegrees) on a bearing (flat-earth: fine within a city)."""
    radians = math.radians(bearing_deg)
    lat = lat_udeg / 1e6
    dlat = km * math.cos(radians) / _KM_PER_DEGREE
    dlon = km * math.sin(radians) / (_KM_PER_DEGREE * max(0.1, math.cos(math.radians(lat))))
    return round((lat + dlat) * 1e6), round((lon_udeg / 1e6 + dlon) * 1e6)


def distance_km(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Great-circle distance between two points given in microdegrees."""
    lat1, lon1, lat2, lon2 = (math.radians(v / 1e6) for v in (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


def bearing_deg(a: tuple[int, int], b: tuple[int, int]) -> int:
    """Initial compass bearing from a to b, whole degrees 0-359."""
    lat1, lon1, lat2, lon2 = (math.radians(v / 1e6) for v in (*a, *b))
    y = math.sin(lon2 - lon1) * math.cos(lat2)
    x = math.cos(lat1) * math.sin(lat2) - math.sin(lat1) * math.cos(lat2) * math.cos(lon2 - lon1)
    return round(math.degrees(math.atan2(y, x))) % 360


@dataclass(frozen=True, slots=True, eq=False)  # compared by identity: profile_for() caches one per vehicle
class Profile:
    key: bytes
    kind: str
    """The physical powertrain (for a vehicle reporting UNKNOWN: its model's)."""
    has_battery: bool
    has_tank: bool
    capacity_kwh: float
    km_per_kwh: float
    tank_l: float
    l_per_100km: float
    charger_kw: float
    volts: int
    phases: int
    city: City
    utc_offset_s: int
    """The city's: a field rather than a property, as every local-time computation reads it."""
    home: tuple[int, int]
    work: tuple[int, int]
    commuter: bool
    sleep_after_s: float
    plug_below_pct: float
    default_limit: int
    tire_kpa: tuple[int, int, int, int]
    lv_base: int
    """12 V battery state of charge when healthy, tenths of a percent."""
    alerts: tuple[str, ...]
    """Trouble codes of the diagnostics in ALERT from the start."""
    oil_offset_km: int
    charge_counter: int
    price_per_kwh: float
    nickname: str
    trim: str
    packages: str
    color: str
    wheel_style: str
    firmware: str
    drive_mode: tuple[str, str]
    connector: str
    fast_charger: str
    surveillance_brand: str
    surveillance_on: bool
    digital_key: bool
    role: str


def physical_kind(vehicle: Vehicle) -> str:
    """The powertrain that drives the physics: the reported one, or for UNKNOWN the model's."""
    if vehicle.powertrain is not Powertrain.UNKNOWN:
        return vehicle.powertrain.value
    electric, fuel = vehicle.model in models.BATTERY_KWH, vehicle.model in models.TANK_L
    if electric:
        return "PHEV" if fuel else "BEV"
    return "HEV" if "Hybrid" in vehicle.model else "ICE"


def _first_alert(rng: random.Random, kind: str) -> tuple[str, ...]:
    """About one vehicle in 16 starts with one diagnostic (of those its powertrain has) in ALERT."""
    possible = _possible_alerts(kind)
    return (rng.choice(possible),) if rng.random() < 0.06 else ()


@cache
def _possible_alerts(kind: str) -> tuple[str, ...]:
    catalog, powertrain = get_catalog(), Powertrain(kind)
    return tuple(sim.dtc or "" for sim in diagnostics() if powertrain in catalog.signal(sim.code).powertrains)


def _needs(vehicle: Vehicle, powertrains: frozenset[Powertrain]) -> bool:
    """Whether the vehicle has a capability that only these powertrains can have (a battery's, a tank's)."""
    return not vehicle.capabilities.isdisjoint(_only_for(powertrains))


@cache
def _only_for(powertrains: frozenset[Powertrain]) -> frozenset[str]:
    """The catalog's signals and commands that only these powertrains can have: computed once, as looking each
    capability up in the catalog made a profile 200 us to draw (the first answer of every vehicle pays it)."""
    catalog = get_catalog()
    of = {c.name: c.powertrains for c in catalog.commands} | {s.code: s.powertrains for s in catalog.signals}
    return frozenset(key for key, powertrains_of in of.items() if powertrains_of <= powertrains)


MAX_PROFILES = 65_536
_PROFILES: dict[tuple[str, int], tuple[Vehicle, Profile]] = {}


def profile_for(vehicle: Vehicle, seed: int) -> Profile:
    """The vehicle's constants for this seed: drawn once, then the same object while the vehicle is the same.

    Every answer asks twice. An lru_cache keyed by the vehicle hashed its seven fields at each call and, once the
    service had read the vehicle's registry record again (every cache_ttl_s), compared them all too: 8 % of the
    service's CPU then. Here the key is its id, and the vehicle held with the profile is the same object, or an
    equal one compared once. Cleared when full (MAX_PROFILES), as the service's own caches are.
    """
    key = (vehicle.id, seed)
    held = _PROFILES.get(key)
    if held is not None and held[0] is vehicle:
        return held[1]
    if held is not None and held[0] == vehicle:
        _PROFILES[key] = (vehicle, held[1])  # the same object next time
        return held[1]
    if len(_PROFILES) >= MAX_PROFILES:
        _PROFILES.clear()
    profile = _draw(vehicle, seed)
    _PROFILES[key] = (vehicle, profile)
    return profile


def _draw(vehicle: Vehicle, seed: int) -> Profile:
    key = hashlib.sha256(f"fleetgate-vehicle|{seed}|{vehicle.id}".encode()).digest()[:32]
    rng = rng_for(key, "profile")
    kind = physical_kind(vehicle)
    has_battery = kind in ("BEV", "PHEV") or _needs(vehicle, _ELECTRIC)
    has_tank = kind in ("ICE", "HEV", "PHEV") or _needs(vehicle, _COMBUSTION)
    electric = "BEV" if kind == "BEV" else "PHEV"
    combustion = kind if kind in models.DEFAULT_TANK_L else "PHEV"
    capacity = rng.choice(models.BATTERY_KWH.get(vehicle.model, models.DEFAULT_BATTERY_KWH[electric]))
    consumption = models.TRUCK_CONSUMPTION_L_100KM if vehicle.model in models.TRUCKS else None
    city = rng.choice(models.CITIES)
    home = offset(round(city.lat * 1e6), round(city.lon * 1e6), 20 * math.sqrt(rng.random()), rng.uniform(0, 360))
    three_phase = city.region == "EU" and rng.random() < 0.7
    charger_kw = 11.0 if three_phase else rng.choice((7.2, 7.7, 9.6))
    if kind == "PHEV":
        charger_kw = min(charger_kw, rng.choice((3.3, 3.6, 7.2)))
    tesla = vehicle.make == "Tesla"
    tire = rng.randint(230, 250)
    return Profile(
        key=key,
        kind=kind,
        has_battery=has_battery,
        has_tank=has_tank,
        capacity_kwh=capacity,
        km_per_kwh=round(rng.uniform(*models.KM_PER_KWH[electric]), 2),
        tank_l=models.TANK_L.get(vehicle.model, models.DEFAULT_TANK_L[combustion]),
        l_per_100km=round(rng.uniform(*(consumption or models.CONSUMPTION_L_100KM[combustion])), 1),
        charger_kw=charger_kw,
        volts=230 if city.region == "EU" else 240,
        phases=3 if three_phase else 1,
        city=city,
        utc_offset_s=city.utc_offset_h * 3600,
        home=home,
        work=offset(*home, rng.uniform(4, 30), rng.uniform(0, 360)),
        commuter=rng.random() < 0.7,
        sleep_after_s=rng.uniform(15, 45) * 60,
        plug_below_pct=95.0 if kind == "PHEV" else rng.uniform(55, 85),
        default_limit=100 if kind == "PHEV" else rng.choice((80, 80, 85, 90)),
        tire_kpa=(tire + rng.randint(-4, 4), tire + rng.randint(-4, 4), tire + rng.randint(-4, 4), tire),
        lv_base=rng.randint(780, 950),
        alerts=_first_alert(rng, kind),
        oil_offset_km=rng.randrange(15_000),
        charge_counter=rng.randint(0, 25),
        price_per_kwh=round(rng.uniform(*models.PRICE_PER_KWH[city.currency]), 2),
        nickname=f"{rng.choice(models.FIRST_NAMES)}'s {vehicle.model}",
        trim=rng.choice(models.TRIMS),
        packages=", ".join(sorted(rng.sample(models.PACKAGES, rng.randint(1, 3)))),
        color=rng.choice(models.EXTERIOR_COLORS),
        wheel_style=rng.choice(models.WHEEL_STYLES),
        firmware=f"{max(vehicle.year, 2019) + rng.randint(0, 2)}.{rng.randint(2, 44)}.{rng.randint(1, 12)}",
        drive_mode=rng.choice(models.DRIVE_MODES),
        connector="NACS" if tesla and city.region == "NA" else ("J1772" if city.region == "NA" else "IEC_TYPE_2"),
        fast_charger="NACS" if tesla and city.region == "NA" else ("CHADEMO" if vehicle.model == "Leaf" else "CCS"),
        surveillance_brand="Sentry Mode" if tesla else f"{vehicle.make} Guardian",
        surveillance_on=rng.random() < 0.4,
        digital_key=rng.random() < 0.5,
        role=rng.choice(("Owner", "Driver", "Driver")),
    )
