"""Bodies of the energy signals: traction battery, charging, and the combustion engine's fuel and oil."""

from __future__ import annotations

import math
from typing import Any

from simulator.vehicles import models
from simulator.vehicles.context import Body, Ctx, Value, iso
from simulator.vehicles.physics import CHARGE_EFFICIENCY, full_at
from simulator.vehicles.state import CHARGE_PORT

KM_PER_MILE = 1.609344
OIL_CHANGE_KM = 15_000
_CAPACITY_NAMES = ("Standard Range", "Long Range", "Extended Range")
_DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")


def electric_range_km(ctx: Ctx) -> float:
    p = ctx.profile
    return ctx.now.soc / 100 * p.capacity_kwh * p.km_per_kwh


def _cold_factor(ctx: Ctx) -> float:
    return max(0.6, 1 - 0.015 * max(0.0, 20 - ctx.now.outside))


def _km(value: float) -> dict[str, Any]:
    return {"value": round(value, 1), "unit": "kilometers"}


def _range(ctx: Ctx) -> dict[str, Any]:
    rated = electric_range_km(ctx)
    extra = [("IDEAL_CONDITIONS", rated * 1.08), ("ESTIMATED", rated * _cold_factor(ctx)), ("RATED", rated)]
    return {**_km(rated), "additionalValues": [{"type": kind, "value": round(v, 1)} for kind, v in extra]}


def _capacity(ctx: Ctx) -> dict[str, Any]:
    offered = models.BATTERY_KWH.get(ctx.vehicle.model, (ctx.profile.capacity_kwh,))
    available = [{"capacity": c, "description": _CAPACITY_NAMES[min(i, 2)]} for i, c in enumerate(offered)]
    return {
        "source": "SMARTCAR",
        "capacity": ctx.profile.capacity_kwh,
        "availableCapacities": available,
        "unit": "kilowatt_hours",
    }


def amps(ctx: Ctx) -> float:
    """Current per phase of the vehicle's charger (its last session's, when not charging)."""
    p = ctx.profile
    return round(p.charger_kw * 1000 / (p.volts * p.phases), 1)


def _detailed_status(ctx: Ctx) -> str:
    if ctx.now.charging:
        return "CHARGING"
    return "FULLY_CHARGED" if ctx.now.full else "NOT_CHARGING"


def _port_color(ctx: Ctx) -> str:
    if ctx.now.charging or ctx.now.full:
        return "GREEN"
    return "ORANGE" if ctx.state.plugged and not ctx.state.charge_on else "BLUE"


def _energy_added(ctx: Ctx) -> float:
    """This session's energy so far, or the last session's."""
    session, capacity = ctx.state.session, ctx.profile.capacity_kwh
    if session is not None:
        return round(max(0.0, ctx.now.soc - session[1] / 100) / 100 * capacity, 2)
    last = ctx.state.records[-1:]
    return round((last[0].soc1 - last[0].soc0) / 10_000 * capacity, 2) if last else 0.0


def _minutes_to_full(ctx: Ctx) -> int:
    end = full_at(ctx.state, ctx.profile)
    return 0 if end is None or not ctx.now.charging else math.ceil((end - ctx.now.t) / 60)


def _limits(ctx: Ctx) -> dict[str, Any]:
    limit = ctx.state.limit
    return {"values": [{"type": "GLOBAL", "limit": limit, "condition": None}], "activeLimit": limit, "unit": "percent"}


def _timers(ctx: Ctx) -> dict[str, Any]:
    values = []
    for s in ctx.state.schedules:
        days = {"daily": _DAYS, "workweek": _DAYS[:5], "weekly": (_DAYS[s.weekday],)}[s.frequency]
        schedule = {"start": s.start, "end": s.end, "days": list(days)}
        values.append(
            {
                "id": f"sched-{s.n}",
                "type": s.frequency.upper(),
                "condition": None,
                "schedules": [schedule],
                "departureTimers": [],
            }
        )
    return {"values": values}


def _records(ctx: Ctx) -> dict[str, Any]:
    p, values = ctx.profile, []
    for r in reversed(ctx.state.records):
        kwh = round((r.soc1 - r.soc0) / 10_000 * p.capacity_kwh, 2)
        paid = kwh / CHARGE_EFFICIENCY * p.price_per_kwh  # the grid's energy, losses included
        values.append(
            {
                "id": f"cr-{int(r.start)}",
                "cost": {"amount": round(paid, 2), "currency": p.city.currency},
                "startTime": iso(r.start),
                "endTime": iso(r.end),
                "location": {"latitude": r.lat / 1e6, "longitude": r.lon / 1e6},
                "energyAdded": {"value": kwh, "unit": "kilowatt_hours"},
                "startStateOfCharge": r.soc0 / 100,
                "endStateOfCharge": r.soc1 / 100,
            }
        )
    return {"values": values}


def _fuel_range(ctx: Ctx) -> float:
    p = ctx.profile
    return round(ctx.now.fuel / 100 * p.tank_l / (p.l_per_100km / 100), 1)


def oil_life(ctx: Ctx) -> float:
    """Percent: falls with distance, back to 100 at each oil change (every OIL_CHANGE_KM)."""
    driven = (ctx.now.odo_km + ctx.profile.oil_offset_km) % OIL_CHANGE_KM
    return round(100 - driven / OIL_CHANGE_KM * 100, 1)


VALUES: dict[str, Value] = {
    "soc_pct": lambda c: round(c.now.soc, 1),
    "battery_heater_on": lambda c: (
        (c.now.charging and c.now.outside < 0) or (c.now.climate and not c.now.driving and c.now.outside < 5)
    ),
    "charging": lambda c: c.now.charging,
    "charging_status": _detailed_status,
    "cable_connected": lambda c: c.state.plugged,
    "cable_latched": lambda c: c.state.plugged and (c.state.locked or c.now.charging),
    "charger_amps": amps,
    "charger_max_amps": lambda c: max(16, math.ceil(amps(c) / 8) * 8),
    "charger_volts": lambda c: c.profile.volts,
    "charger_watts": lambda c: round(c.profile.charger_kw * 1000),
    "charge_rate_mph": lambda c: round(
        c.profile.charger_kw * CHARGE_EFFICIENCY * c.profile.km_per_kwh / KM_PER_MILE, 1
    ),
    "energy_added_kwh": _energy_added,
    "minutes_to_full": _minutes_to_full,
    "charger_phases": lambda c: c.profile.phases,
    "connector": lambda c: c.profile.connector,
    "fast_charger": lambda c: c.profile.fast_charger,
    "fast_charger_present": lambda _c: False,  # only AC charging is simulated
    "charge_port_open": lambda c: c.state.is_open(CHARGE_PORT),
    "charge_port_color": _port_color,
    "fuel_pct": lambda c: round(c.now.fuel, 1),
    "fuel_liters": lambda c: round(c.now.fuel / 100 * c.profile.tank_l, 1),
    "fuel_range_km": _fuel_range,
    "oil_life_pct": oil_life,
}

BODIES: dict[str, Body] = {
    "battery_range": _range,
    "battery_capacity": _capacity,
    "max_range_charges": lambda c: {
        "value": c.profile.charge_counter + sum(r.soc1 >= 9_900 for r in c.state.records),
        "unit": "count",
    },
    "estimated_range": lambda c: _km(electric_range_km(c) * _cold_factor(c)),
    "ideal_range": lambda c: _km(electric_range_km(c) * 1.08),
    "rated_range": lambda c: _km(electric_range_km(c)),
    "charge_limits": _limits,
    "charge_timers": _timers,
    "charge_records": _records,
}
