"""Builders of domain objects for tests and scenarios: a vehicle, a connection and a request, each valid by default."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from schemas.connection import Connection, ConnectionStatus
from schemas.messages import RequestMessage
from schemas.permissions import PermissionSet
from schemas.powertrain import Powertrain
from schemas.vehicle import Vehicle

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def make_vehicle(
    powertrain: Powertrain = Powertrain.BEV, *, lacks: Iterable[str] = (), vehicle_id: str = "veh-1"
) -> Vehicle:
    return Vehicle.with_defaults(
        id=vehicle_id,
        vin="5YJ3E1EA7KF000001",
        make="Tesla",
        model="Model 3",
        year=2022,
        powertrain=powertrain,
        lacks=lacks,
    )


def make_connection(
    *permissions: str,
    status: ConnectionStatus = ConnectionStatus.ACTIVE,
    connection_id: str = "conn-1",
    vehicle_id: str = "veh-1",
) -> Connection:
    return Connection(
        id=connection_id,
        vehicle_id=vehicle_id,
        permissions=PermissionSet.optional(permissions),
        config_version=1,
        status=status,
        created_at=NOW,
        updated_at=NOW,
    )


def make_request(target: str, kind: str = "signal", **overrides: Any) -> RequestMessage:
    fields: dict[str, Any] = {
        "request_id": "req-1",
        "connection_id": "conn-1",
        "vehicle_id": "veh-1",
        "kind": kind,
        "target": target,
        "issued_at": NOW,
    }
    fields.update(overrides)
    return RequestMessage.model_validate(fields)


# Test timings: quick reads, reclaim after 200 ms idle, dead-letter after 2 deliveries.
SIM_START = "2026-01-15T09:00:00Z"
"""The simulated time tests' vehicles live at: without it, a test's vehicle is out of coverage or driving at
some hours of the day and not at others (the same vehicle id, the same life), and the test depends on the hour."""

TEST_TIMINGS: dict[str, Any] = {
    "sim_start": SIM_START,
    "block_ms": 50,
    "min_idle_ms": 200,
    "reclaim_interval_ms": 100,
    "trim_interval_ms": 100_000,
    "max_deliveries": 2,
    "max_payload_bytes": 1024,
}


ISSUED_AT = "2026-11-28T12:00:00Z"


def request_body(request_id: str = "req-1", **fields: Any) -> dict[str, Any]:
    """The JSON object of a valid request as a client writes it (make_request's fields); `fields` replace or add."""
    return {
        "v": 1,
        "request_id": request_id,
        "connection_id": "conn-1",
        "vehicle_id": "veh-1",
        "kind": "signal",
        "target": "odometer-traveleddistance",
        "issued_at": ISSUED_AT,
        **fields,
    }


def request_json(request_id: str = "req-1", **fields: Any) -> bytes:
    """`request_body(...)` as the UTF-8 JSON of an entry's `data` field."""
    return json.dumps(request_body(request_id, **fields)).encode()
