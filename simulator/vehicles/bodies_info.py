"""Bodies of the signals about the vehicle's health, connectivity, service, identity and owner account."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simulator.vehicles import models
from simulator.vehicles.bodies_cabin import LOW_TIRE_KPA, tire_pressures
from simulator.vehicles.bodies_energy import OIL_CHANGE_KM, oil_life
from simulator.vehicles.context import Body, Ctx, Value, iso
from simulator.vehicles.plan import yearly_km
from simulator.vehicles.signal_map import SignalSim, diagnostics

LV_GOOD_PCT, LV_LOW_PCT = 60, 40
"""12 V battery: GOOD from 60 %, WARN from 40 %, BAD below (and commands refused as LOW_BATTERY)."""
OIL_ALERT_PCT = 10
_SERVICES_SHOWN = 3

ALERT_RULES: dict[str, Callable[[Ctx], bool]] = {
    "a_tire_is_low": lambda c: min(tire_pressures(c)) < LOW_TIRE_KPA,
    "oil_change_due": lambda c: c.profile.has_tank and oil_life(c) < OIL_ALERT_PCT,
}
"""Conditions that raise a diagnostic by themselves (signals.toml `alert_when`)."""


def alerts(ctx: Ctx) -> list[SignalSim]:
    """The diagnostics in ALERT: set in the state, or raised by their rule."""
    return [sim for sim in diagnostics() if _in_alert(sim, ctx)]


def _in_alert(sim: SignalSim, ctx: Ctx) -> bool:
    return sim.dtc in ctx.state.alerts or (sim.alert_when is not None and ALERT_RULES[sim.alert_when](ctx))


def _diagnostic(sim: SignalSim) -> Body:
    def body(ctx: Ctx) -> dict[str, Any]:
        if _in_alert(sim, ctx):  # this one only, not alerts(): every rule of every diagnostic, 4 us
            return {"status": "ALERT", "description": sim.fault}
        return {"status": "OK", "description": "No issues detected"}

    return body


def lv_status(percent: float) -> str:
    if percent >= LV_GOOD_PCT:
        return "GOOD"
    return "WARN" if percent >= LV_LOW_PCT else "BAD"


def _services(ctx: Ctx) -> dict[str, Any]:
    """The last few scheduled services: one every OIL_CHANGE_KM, dated by the owner's yearly distance."""
    p, odo = ctx.profile, ctx.now.odo_km
    done = int((odo + p.oil_offset_km) // OIL_CHANGE_KM)
    tasks = ["Oil and filter change", "Multi-point inspection"] if p.has_tank else ["Tire rotation", "Cabin air filter"]
    values = []
    for k in range(done, max(0, done - _SERVICES_SHOWN), -1):
        at_km = k * OIL_CHANGE_KM - p.oil_offset_km
        if at_km <= 0:
            break
        when = ctx.now.t - (odo - at_km) / max(1000.0, yearly_km(p)) * 365.25 * 86_400
        values.append(
            {"id": f"svc-{k}", "date": iso(when), "odometer": {"value": at_km, "unit": "kilometers"}, "tasks": tasks}
        )
    return {"values": values}


VALUES: dict[str, Value] = {
    "dtc_count": lambda c: len(alerts(c)),
    "lv_pct": lambda c: round(c.now.lv, 1),
    "lv_status": lambda c: lv_status(c.now.lv),
    "online": lambda c: c.now.reachable,
    "asleep": lambda c: c.now.asleep,
    "digital_key_paired": lambda c: c.profile.digital_key,
    "firmware": lambda c: c.profile.firmware,
    "in_service": lambda _c: False,
    "surveillance_on": lambda c: c.profile.surveillance_on,
    "surveillance_brand": lambda c: c.profile.surveillance_brand,
    "vin": lambda c: c.vehicle.vin,
    "nickname": lambda c: c.profile.nickname,
    "trim": lambda c: c.profile.trim,
    "packages": lambda c: c.profile.packages,
    "exterior_color": lambda c: c.profile.color,
    "account_role": lambda c: c.profile.role,
}

BODIES: dict[str, Body] = {
    "dtc_list": lambda c: {"values": [{"code": sim.dtc, "timestamp": iso(c.state.alerts_at)} for sim in alerts(c)]},
    "service_records": _services,
    "oem_permissions": lambda _c: {"values": list(models.OEM_PERMISSIONS)},
}

FACTORIES: dict[str, Callable[[SignalSim], Body]] = {"diagnostic": _diagnostic}
"""Builders made per signal from its entry in signals.toml."""
