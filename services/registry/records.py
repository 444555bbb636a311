"""How the registry's records are stored under the keyspace's keys (services/keyspace.py).

A connection record is one line of `|`-separated fields (ids never contain `|`; scopes hold only permission
names, spaces and `required:`):

    2|{status a|r}|{vehicle_id}|{granted mask, hex}|{required mask, hex}|{config version or empty}
     |{created, epoch ms}|{updated, epoch ms}|{scope or empty}|{app id}|{user id or empty}   (one line)

Format 1, written before applications existed, lacks the last two fields: it reads as the default app's, with
no user.

The masks are bitmasks over the catalog's permissions in file order (bit i = i-th permission), so a grant of
any size costs a few bytes and a lookup is one GET. A vehicle record stores its capabilities as differences
from its powertrain's defaults (`adds`, `lacks`), so the usual vehicle is a short JSON object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
from pydantic_core import from_json

from schemas.application import DEFAULT_APP_ID
from schemas.catalog import get_catalog
from schemas.connection import Connection, ConnectionStatus
from schemas.permissions import PermissionSet
from schemas.powertrain import Powertrain
from schemas.vehicle import Vehicle

CONNECTION_FORMAT = "2"
_FORMAT_BEFORE_APPS = "1"
_STATUS_CODES = {ConnectionStatus.ACTIVE: "a", ConnectionStatus.REVOKED: "r"}
_STATUS_OF_CODE = {code: status for status, code in _STATUS_CODES.items()}


def encode_connection(connection: Connection) -> bytes:
    granted = connection.permissions
    return "|".join(
        (
            CONNECTION_FORMAT,
            _STATUS_CODES[connection.status],
            connection.vehicle_id,
            f"{granted.granted:x}",
            f"{granted.required:x}",
            "" if connection.config_version is None else str(connection.config_version),
            str(_epoch_ms(connection.created_at)),
            str(_epoch_ms(connection.updated_at)),
            connection.scope or "",
            connection.app_id,
            connection.user_id or "",
        )
    ).encode()


def _connection_fields(connection_id: str, record: bytes | str) -> list[str]:
    """The record's fields in format 2's order (format 1's completed with the default app and no user)."""
    text = record.decode() if isinstance(record, bytes) else record
    fields = text.split("|")
    fmt = fields[0]
    if fmt == _FORMAT_BEFORE_APPS:
        fields += [DEFAULT_APP_ID, ""]
    elif fmt != CONNECTION_FORMAT:
        raise ValueError(f"connection {connection_id}: unknown record format {fmt!r}")
    return fields


@dataclass(frozen=True, slots=True)
class ConnectionListing:
    """What a listing filters a connection by, read from its record without building (and validating) the
    `Connection`: about a tenth of the cost, for searches that look at every connection of an app."""

    active: bool
    vehicle_id: str
    granted: int
    """The granted permissions' mask (bit i: the catalog's i-th permission)."""
    app_id: str
    user_id: str | None


def connection_listing(connection_id: str, record: bytes | str) -> ConnectionListing:
    _, status, vehicle_id, granted, _, _, _, _, _, app_id, user_id = _connection_fields(connection_id, record)
    active = _STATUS_OF_CODE[status] is ConnectionStatus.ACTIVE
    return ConnectionListing(active, vehicle_id, int(granted, 16), app_id, user_id or None)


def decode_connection(connection_id: str, record: bytes | str) -> Connection:
    fields = _connection_fields(connection_id, record)
    _, status, vehicle_id, granted, required, version, created, updated, scope, app_id, user_id = fields
    return Connection(
        id=connection_id,
        vehicle_id=vehicle_id,
        permissions=PermissionSet(int(granted, 16), int(required, 16)),
        config_version=int(version) if version else None,
        scope=scope or None,
        status=_STATUS_OF_CODE[status],
        created_at=_from_epoch_ms(created),
        updated_at=_from_epoch_ms(updated),
        app_id=app_id,
        user_id=user_id or None,
    )


def record_active_grant(record: bytes | str) -> int | None:
    """A connection record's granted permission mask, None if it is revoked: read without building the connection
    (what-if and advice read every connection of an app)."""
    text = record.decode() if isinstance(record, bytes) else record
    fmt, status, _vehicle_id, granted, _ = text.split("|", 4)
    if fmt not in (CONNECTION_FORMAT, _FORMAT_BEFORE_APPS):
        raise ValueError(f"unknown connection record format {fmt!r}")
    return int(granted, 16) if _STATUS_OF_CODE[status] is ConnectionStatus.ACTIVE else None


def encode_vehicle(vehicle: Vehicle) -> bytes:
    defaults = get_catalog().default_capabilities(vehicle.powertrain)
    record = {
        "vin": vehicle.vin,
        "make": vehicle.make,
        "model": vehicle.model,
        "year": vehicle.year,
        "powertrain": vehicle.powertrain.value,
        "adds": sorted(vehicle.capabilities - defaults),
        "lacks": sorted(defaults - vehicle.capabilities),
    }
    return json.dumps(record, separators=(",", ":")).encode()


def decode_vehicle(vehicle_id: str, record: bytes | str) -> Vehicle:
    fields = json.loads(record)
    return Vehicle.with_defaults(
        id=vehicle_id,
        vin=fields["vin"],
        make=fields["make"],
        model=fields["model"],
        year=fields["year"],
        powertrain=Powertrain(fields["powertrain"]),
        adds=fields["adds"],
        lacks=fields["lacks"],
    )


VehicleSignature = tuple[str, str, tuple[str, ...], tuple[str, ...]]
"""A vehicle record's make, powertrain, and the capabilities it adds to and lacks from its powertrain's defaults:
what vehicles alike share (capabilities follow from the rest)."""


def record_signature(record: bytes | str) -> VehicleSignature:
    """A vehicle record's signature, without building (and validating) the vehicle (what-if reads every one:
    pydantic-core's parser takes a third of json.loads's time on these short objects)."""
    fields = from_json(record)
    return fields["make"], fields["powertrain"], tuple(fields["adds"]), tuple(fields["lacks"])


class VehicleSummary(msgspec.Struct, frozen=True, gc=False):
    """What a listing shows of a vehicle, read from its record without building the `Vehicle` (no capabilities):
    msgspec reads these five fields and skips the rest, about a tenth of a `json.loads`."""

    vin: str
    make: str
    model: str
    year: int
    powertrain: Powertrain


_VEHICLE_SUMMARY = msgspec.json.Decoder(VehicleSummary).decode


def vehicle_summary(record: bytes | str) -> VehicleSummary:
    try:
        return _VEHICLE_SUMMARY(record)
    except msgspec.ValidationError:  # a powertrain this code does not know: UNKNOWN (as the fleet groups count it)
        fields = json.loads(record)
        return VehicleSummary(fields["vin"], fields["make"], fields["model"], int(fields["year"]), Powertrain.UNKNOWN)


def record_vin(record: bytes | str) -> str:
    """A vehicle record's VIN, without building the vehicle."""
    return str(json.loads(record)["vin"])


def _epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _from_epoch_ms(text: str) -> datetime:
    return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
