"""Smartcar v2 bodies from the vehicle's v3 signal bodies (pure), and v2 request bodies to command arguments.

Each builder is named in schemas/api_v2.toml. A GET builder takes the endpoint's signal bodies by the role the
endpoint map gives each signal (None for an optional signal the vehicle is not capable of; no code here names a
signal) and the call's `Query`; it answers in Smartcar's v2 field names,
fractions where v2 speaks of fractions (`percentRemaining`, `limit`, `lifeRemaining`), and in imperial units when
asked (`SC-Unit-System: imperial`: miles, psi, gallons; no v2 endpoint here reports a temperature).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

Bodies = Mapping[str, dict[str, Any] | None]
Json = dict[str, Any] | list[Any]

KM_PER_MILE = 1.609344
KPA_PER_PSI = 6.894757
LITERS_PER_GALLON = 3.785411784


class BodyError(ValueError):
    """A v2 request body (or query) that cannot become the command's arguments: VALIDATION / PARAMETER 400."""


@dataclass(frozen=True, slots=True)
class Query:
    """What a builder may need besides the signal bodies."""

    vehicle_id: str
    make: str = ""
    model: str = ""
    year: int = 0
    imperial: bool = False
    params: Mapping[str, str] = field(default_factory=dict)


def distance(km: float | None, imperial: bool) -> float | None:
    return None if km is None else (round(km / KM_PER_MILE, 4) if imperial else km)


def pressure(kpa: float | None, imperial: bool) -> float | None:
    return None if kpa is None else (round(kpa / KPA_PER_PSI, 4) if imperial else kpa)


def volume(liters: float | None, imperial: bool) -> float | None:
    return None if liters is None else (round(liters / LITERS_PER_GALLON, 4) if imperial else liters)


def fraction(percent: float | None) -> float | None:
    return None if percent is None else round(percent / 100, 6)


def _value(bodies: Bodies, code: str) -> Any:
    body = bodies.get(code)
    return None if body is None else body.get("value")


def attributes(bodies: Bodies, q: Query) -> Json:
    del bodies  # read only for its permission: make, model and year are the registry's facts
    return {"id": q.vehicle_id, "make": q.make, "model": q.model, "year": q.year}


def vin(bodies: Bodies, q: Query) -> Json:
    del q
    return {"vin": _value(bodies, "vin")}


def odometer(bodies: Bodies, q: Query) -> Json:
    return {"distance": distance(_value(bodies, "distance"), q.imperial)}


def location(bodies: Bodies, q: Query) -> Json:
    del q
    body = bodies.get("location") or {}
    return {"latitude": body.get("latitude"), "longitude": body.get("longitude")}


def fuel(bodies: Bodies, q: Query) -> Json:
    return {
        "range": distance(_value(bodies, "range"), q.imperial),
        "percentRemaining": fraction(_value(bodies, "percent")),
        "amountRemaining": volume(_value(bodies, "amount"), q.imperial),
    }


def battery(bodies: Bodies, q: Query) -> Json:
    return {
        "range": distance(_value(bodies, "range"), q.imperial),
        "percentRemaining": fraction(_value(bodies, "percent")),
    }


def battery_capacity(bodies: Bodies, q: Query) -> Json:
    del q
    body = bodies.get("capacity") or {}
    return {"capacity": body.get("capacity")}


def nominal_capacity(bodies: Bodies, q: Query) -> Json:
    del q
    body = bodies.get("capacity") or {}
    available = [
        {"capacity": c.get("capacity"), "description": c.get("description")}
        for c in body.get("availableCapacities") or []
    ]
    return {
        "availableCapacities": available,
        "capacity": {"nominal": body.get("capacity"), "source": body.get("source")},
        "url": None,
    }


def charge(bodies: Bodies, q: Query) -> Json:
    del q
    return {
        "isPluggedIn": _value(bodies, "plugged_in"),
        "state": _value(bodies, "state"),
    }


def charge_limit(bodies: Bodies, q: Query) -> Json:
    del q
    body = bodies.get("limits") or {}
    return {"limit": fraction(body.get("activeLimit"))}


_WHEELS = {(0, 0): "frontLeft", (0, 1): "frontRight", (1, 0): "backLeft", (1, 1): "backRight"}


def tire_pressure(bodies: Bodies, q: Query) -> Json:
    body = bodies.get("tires") or {}
    out: dict[str, Any] = dict.fromkeys(_WHEELS.values())
    for tire in body.get("values") or []:
        name = _WHEELS.get((tire.get("row"), tire.get("column")))
        if name is not None:
            out[name] = pressure(tire.get("tirePressure"), q.imperial)
    return out


def engine_oil(bodies: Bodies, q: Query) -> Json:
    del q
    return {"lifeRemaining": fraction(_value(bodies, "oil_life"))}


_SEATS = {(0, 0): "frontLeft", (0, 1): "frontRight", (1, 0): "backLeft", (1, 1): "backRight"}


def _open(is_open: Any) -> str:
    return "OPEN" if is_open else "CLOSED"


def lock_status(bodies: Bodies, q: Query) -> Json:
    del q
    doors = (bodies.get("doors") or {}).get("values") or []
    windows = (bodies.get("windows") or {}).get("values") or []
    storage = []
    for code, kind in (("rear", "rear"), ("front", "front")):
        body = bodies.get(code)
        if body is not None:
            storage.append({"type": kind, "status": _open(body.get("isOpen"))})
    sunroof = bodies.get("sunroof")
    return {
        "isLocked": _value(bodies, "locked"),
        "doors": [{"type": _SEATS.get((d.get("row"), d.get("column")), "other"), "status": _door(d)} for d in doors],
        "windows": [
            {"type": _SEATS.get((w.get("row"), w.get("column")), "other"), "status": _open(w.get("isOpen"))}
            for w in windows
        ],
        "sunroof": [] if sunroof is None else [{"type": "sunroof", "status": _open(sunroof.get("isOpen"))}],
        "storage": storage,
        "chargingPort": [],  # the port's flap is read_charge's, not read_security's: never mixed in here
    }


def _door(door: dict[str, Any]) -> str:
    if door.get("isOpen"):
        return "OPEN"
    return "LOCKED" if door.get("isLocked") else "UNLOCKED"


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text[:10])
    except ValueError as exc:
        raise BodyError(f"{name} must be a date (YYYY-MM-DD)") from exc


def service_history(bodies: Bodies, q: Query) -> Json:
    """Smartcar's v2 service records, oldest first, within startDate and endDate (inclusive) when given."""
    start = _day(q.params["startDate"], "startDate") if q.params.get("startDate") else None
    end = _day(q.params["endDate"], "endDate") if q.params.get("endDate") else None
    records = (bodies.get("records") or {}).get("values") or []
    out = []
    for record in sorted(records, key=lambda r: str(r.get("date"))):
        day = _day(str(record.get("date")), "date")
        if (start and day < start) or (end and day > end):
            continue
        odo = record.get("odometer") or {}
        tasks = record.get("tasks") or []
        out.append(
            {
                "serviceId": record.get("id"),
                "serviceDate": record.get("date"),
                "odometerDistance": distance(odo.get("value"), q.imperial),
                "serviceTasks": [{"taskId": str(i), "taskDescription": t} for i, t in enumerate(tasks, 1)],
                "serviceDetails": [],
                "serviceCost": {"totalCost": None, "currency": None},
            }
        )
    return out


def system_status(bodies: Bodies, q: Query) -> Json:
    """Each system the vehicle has: its role in api_v2.toml is Smartcar's systemId."""
    del q
    systems = [
        {"systemId": system_id, "status": body.get("status"), "description": body.get("description")}
        for system_id, body in bodies.items()
        if body is not None
    ]
    return {"systems": systems}


def trouble_codes(bodies: Bodies, q: Query) -> Json:
    del q
    codes = (bodies.get("codes") or {}).get("values") or []
    return {"activeCodes": [{"code": c.get("code"), "timestamp": c.get("timestamp")} for c in codes]}


def _number(body: Mapping[str, Any], name: str) -> float:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BodyError(f"{name} must be a number")
    return float(value)


def charge_limit_params(body: Mapping[str, Any]) -> dict[str, Any]:
    """v2's limit is a fraction (0.5-1, the SDKs send 0.7); the command's `percent` an integer (the gatekeeper checks
    its range)."""
    return {"percent": round(_number(body, "limit") * 100)}


def destination_params(body: Mapping[str, Any]) -> dict[str, Any]:
    return {"latitude": _number(body, "latitude"), "longitude": _number(body, "longitude")}


GET_BUILDERS: dict[str, Callable[[Bodies, Query], Json]] = {
    f.__name__: f
    for f in (
        attributes,
        vin,
        odometer,
        location,
        fuel,
        battery,
        battery_capacity,
        nominal_capacity,
        charge,
        charge_limit,
        tire_pressure,
        engine_oil,
        lock_status,
        service_history,
        system_status,
        trouble_codes,
    )
}
PARAM_BUILDERS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    f.__name__: f for f in (charge_limit_params, destination_params)
}
