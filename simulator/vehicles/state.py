"""A simulated vehicle's evolving state: the few quantities that change, compact and serializable.

Everything else a signal reports is derived when it is read, from this state, the vehicle's profile (constants
drawn from its id and the seed) and the time. Continuous quantities (position, odometer, state of charge, fuel,
12 V battery) are stored as they were at `t0`, the last event or command that changed how they evolve; a read
at time t projects them from there, so advancing the clock without an event changes nothing but `at`.

Units keep the state small and exact: positions in microdegrees, the odometer in metres, state of charge and
fuel level in hundredths of a percent, the 12 V battery in tenths of a percent, temperatures in tenths of a
degree. `encode()` is JSON with short keys (a few hundred bytes).
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from operator import attrgetter
from typing import Any

from pydantic_core import from_json, to_json

# The open/closed flags of `VehicleState.open`, one bit each.
DOORS = (0, 1, 2, 3)
"""Front left (the driver's), front right, rear left, rear right: row-major over 2 rows x 2 columns."""
WINDOWS = (4, 5, 6, 7)
SUNROOF, REAR_TRUNK, FRONT_TRUNK, ENGINE_COVER, TAILGATE, CHARGE_PORT = 8, 9, 10, 11, 12, 13
CLOSURES = {
    "sunroof": SUNROOF,
    "rear_trunk": REAR_TRUNK,
    "front_trunk": FRONT_TRUNK,
    "engine_cover": ENGINE_COVER,
    "tailgate": TAILGATE,
}
"""The closures signals.toml can name."""
DRIVER_DOOR = DOORS[0]
BLOCKS_LOCKING = (*DOORS, REAR_TRUNK, FRONT_TRUNK, TAILGATE)
"""Open closures that keep the vehicle from locking (Smartcar's DOOR_OPEN: "all doors and the trunk")."""

# What is pending after an arrival (`VehicleState.step`).
STEP_NONE, STEP_SECURE, STEP_PLUG = 0, 1, 2

ENCODING_VERSION = 1


def bit(n: int) -> int:
    return 1 << n


@dataclass(frozen=True, slots=True)
class Trip:
    """The trip under way: from the state's position at `t0` to the target, arriving at `arrive`."""

    to_lat: int
    to_lon: int
    arrive: float
    meters: int
    """Road distance left at t0."""
    dsoc: int
    """State of charge the rest of the trip uses (hundredths of a percent)."""
    dfuel: int
    """Fuel level the rest of the trip uses (hundredths of a percent)."""
    kph: int
    """Average speed."""


@dataclass(frozen=True, slots=True)
class ChargeRecord:
    """A finished charging session."""

    start: float
    end: float
    soc0: int
    soc1: int
    lat: int
    lon: int


@dataclass(frozen=True, slots=True)
class Schedule:
    """A charge schedule set by command: id `sched-{n}`, daily/weekly/workweek, HH:MM to HH:MM."""

    n: int
    frequency: str
    start: str
    end: str
    weekday: int
    """For a weekly schedule, its day (0 is Monday): the day it was set."""


@dataclass(frozen=True, slots=True)
class VehicleState:
    seed: int
    """The seed the vehicle's profile and daily life are drawn from (reads and commands need it)."""
    at: float
    """Simulated time up to which the vehicle's life has been applied."""
    t0: float
    """When the stored continuous quantities below held (see the module docstring)."""
    since: float
    """When the current phase (parked or driving) began."""
    lat: int
    lon: int
    heading: int
    odo: int
    soc: int
    fuel: int
    lv: int
    limit: int
    """Charge limit, percent."""
    trip: Trip | None = None
    """None while parked."""
    plugged: bool = False
    charge_on: bool = False
    """Charging wanted while plugged in (start-charge / stop-charge); it stops by itself at the limit."""
    session: tuple[float, int] | None = None
    """The charging session under way: its start and the state of charge then."""
    charged_at: float | None = None
    """When the vehicle last stopped charging (the time of its last charging values)."""
    records: tuple[ChargeRecord, ...] = ()
    open: int = 0
    locked: bool = True
    climate_since: float | None = None
    """When the cabin climate was switched on by command (it runs for CLIMATE_RUN_S), None when off."""
    target: int = 210
    """Cabin target temperature, tenths of a degree Celsius."""
    defrost: int = 0
    """Bit 0 front, bit 1 rear."""
    wheel_heat: bool = False
    dest: tuple[int, int] | None = None
    """A navigation destination the next trip drives to."""
    awake: float = 0.0
    """Last activity: the vehicle falls asleep its profile's sleep delay after it (if nothing keeps it awake)."""
    step: int = STEP_NONE
    offline_since: float | None = None
    """Forced out of coverage (set_value) since then, until set back."""
    remote_off_since: float | None = None
    """Remote access disabled by the owner since then (set_remote_access)."""
    tires: tuple[int, int, int, int] | None = None
    """Tire pressures (kPa) set by hand; None: the profile's, with temperature."""
    alerts: tuple[str, ...] = ()
    """The trouble codes of the diagnostics set in ALERT (signals.toml `dtc`), sorted."""
    alerts_at: float = 0.0
    schedules: tuple[Schedule, ...] = ()
    schedule_n: int = 0

    @property
    def driving(self) -> bool:
        return self.trip is not None

    def is_open(self, n: int) -> bool:
        return bool(self.open & bit(n))

    def encode(self) -> bytes:
        """Compact JSON: short keys, defaults left out."""
        out: dict[str, Any] = {"v": ENCODING_VERSION}
        for (short, default), value in zip(_ENCODED, _FIELD_VALUES(self), strict=True):
            if default is not MISSING and value == default:
                continue
            out[short] = value if type(value) in _AS_IS else _plain(value)
        # pydantic-core writes what json.dumps() does (floats too: shortest round trip), but for floats under 1e-4
        # (1e-5, not 1e-05) and non-ASCII (as UTF-8): JSON of the same values, 0.8 us instead of 5.3.
        return to_json(out)

    @classmethod
    def decode(cls, data: bytes) -> VehicleState:
        """The state `encode()` wrote; ValueError if it is not one."""
        try:
            raw = from_json(data)  # pydantic-core's parser: 1.3 us for a state, json.loads 3.7
            if raw.pop("v") != ENCODING_VERSION:
                raise ValueError("unknown encoding version")
            kwargs = {}
            for key, value in raw.items():
                name = _LONG[key]
                convert = _DECODED.get(name)
                kwargs[name] = value if convert is None else convert(value)
            return cls(**kwargs)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not an encoded vehicle state: {exc}") from exc


_SHORT = {
    "seed": "s", "at": "at", "t0": "t0", "since": "sn", "lat": "la", "lon": "lo", "heading": "h", "odo": "o",
    "soc": "c", "fuel": "f", "lv": "lv", "limit": "li", "trip": "tr", "plugged": "pl", "charge_on": "ch",
    "session": "ss", "charged_at": "ca", "records": "re", "open": "op", "locked": "lk", "climate_since": "cl",
    "target": "tg", "defrost": "df", "wheel_heat": "wh", "dest": "de", "awake": "aw", "step": "st",
    "offline_since": "of", "remote_off_since": "ro", "tires": "ti", "alerts": "al", "alerts_at": "aa",
    "schedules": "sc", "schedule_n": "sx",
}  # fmt: skip
_LONG = {short: name for name, short in _SHORT.items()}


def _plain(value: Any) -> Any:
    """JSON-ready: nested records as lists of their fields, whole floats as integers."""
    if isinstance(value, Trip | ChargeRecord | Schedule):
        return [_plain(getattr(value, f.name)) for f in fields(value)]
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_AS_IS = frozenset({int, bool, str, type(None)})
"""Types _plain() leaves as they are: most fields' (encode() skips the call for them)."""


def _floats(values: list[Any], *positions: int) -> list[Any]:
    return [float(v) if i in positions else v for i, v in enumerate(values)]


_NESTED: dict[str, Any] = {
    "trip": lambda v: Trip(*_floats(v, 2)),
    "records": lambda v: tuple(ChargeRecord(*_floats(r, 0, 1)) for r in v),
    "schedules": lambda v: tuple(Schedule(*s) for s in v),
    "session": lambda v: (float(v[0]), v[1]),
    "dest": tuple,
    "tires": tuple,
    "alerts": tuple,
}
_TIMES = ("at", "t0", "since", "charged_at", "climate_since", "awake", "offline_since", "remote_off_since", "alerts_at")
_DECODED: dict[str, Any] = _NESTED | {name: lambda v: None if v is None else float(v) for name in _TIMES}
"""How each field's JSON value becomes the field's (the others are taken as they are)."""
_ENCODED = tuple((_SHORT[f.name], f.default) for f in fields(VehicleState))
_FIELD_VALUES = attrgetter(*(f.name for f in fields(VehicleState)))
