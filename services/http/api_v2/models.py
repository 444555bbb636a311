"""The v2 answers' shapes, for the OpenAPI document (the handlers build the bodies in bodies.py): Smartcar's field
names, null where the vehicle reported nothing."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class Attributes(_Body):
    id: str
    make: str
    model: str
    year: int


class Vin(_Body):
    vin: str | None


class Odometer(_Body):
    distance: float | None


class Location(_Body):
    latitude: float | None
    longitude: float | None


class Fuel(_Body):
    range: float | None
    percent_remaining: float | None = Field(alias="percentRemaining")
    amount_remaining: float | None = Field(alias="amountRemaining")


class Battery(_Body):
    range: float | None
    percent_remaining: float | None = Field(alias="percentRemaining")


class BatteryCapacity(_Body):
    capacity: float | None


class NominalCapacity(_Body):
    available_capacities: list[dict[str, Any]] = Field(alias="availableCapacities")
    capacity: dict[str, Any]
    url: str | None


class Charge(_Body):
    is_plugged_in: bool | None = Field(alias="isPluggedIn")
    state: str | None


class ChargeLimit(_Body):
    limit: float | None


class TirePressure(_Body):
    front_left: float | None = Field(alias="frontLeft")
    front_right: float | None = Field(alias="frontRight")
    back_left: float | None = Field(alias="backLeft")
    back_right: float | None = Field(alias="backRight")


class EngineOil(_Body):
    life_remaining: float | None = Field(alias="lifeRemaining")


class LockStatus(_Body):
    is_locked: bool | None = Field(alias="isLocked")
    doors: list[dict[str, Any]]
    windows: list[dict[str, Any]]
    sunroof: list[dict[str, Any]]
    storage: list[dict[str, Any]]
    charging_port: list[dict[str, Any]] = Field(alias="chargingPort")


class ServiceRecord(_Body):
    service_id: str | None = Field(alias="serviceId")
    service_date: str | None = Field(alias="serviceDate")
    odometer_distance: float | None = Field(alias="odometerDistance")
    service_tasks: list[dict[str, Any]] = Field(alias="serviceTasks")


class SystemStatus(_Body):
    systems: list[dict[str, Any]]


class TroubleCodes(_Body):
    active_codes: list[dict[str, Any]] = Field(alias="activeCodes")


class ActionResult(_Body):
    status: str
    message: str


class BatchItem(_Body):
    path: str
    code: int
    headers: dict[str, str]
    body: Any


class BatchResult(_Body):
    responses: list[BatchItem]


MODELS: dict[str, Any] = {
    "attributes": Attributes,
    "vin": Vin,
    "odometer": Odometer,
    "location": Location,
    "fuel": Fuel,
    "battery": Battery,
    "battery_capacity": BatteryCapacity,
    "nominal_capacity": NominalCapacity,
    "charge": Charge,
    "charge_limit": ChargeLimit,
    "tire_pressure": TirePressure,
    "engine_oil": EngineOil,
    "lock_status": LockStatus,
    "service_history": list[ServiceRecord],
    "system_status": SystemStatus,
    "trouble_codes": TroubleCodes,
}
