"""The registry's data layout in Redis: every key name and record encoding, in one place.

The gatekeeper reads what the Connect service writes, so this module is a contract inside the project.
With the key prefix `P` (setting `FLEETGATE_KEY_PREFIX`, default `fleetgate`):

| key                          | type   | holds                                                            |
|------------------------------|--------|------------------------------------------------------------------|
| `P:vehicle:{vehicle_id}`     | string | a vehicle, JSON (see `encode_vehicle`)                           |
| `P:conn:{connection_id}`     | string | a connection, compact text (see `encode_connection`)             |
| `P:access:config:{version}`  | string | a published Vehicle Access config, JSON; never changed once set  |
| `P:access:current`           | string | the current config version (an integer)                          |
| `P:access:version`           | string | the last version handed out (INCR)                               |
| `P:access:filters`           | string | the Connection Filters, JSON                                     |
| `P:connection-events`        | stream | `connection.*` events, field `data` (the wire contract)          |
| `P:requests`, `P:decisions`, `P:deadletter` | streams | the gatekeeper's (DESIGN.md)                          |
| `P:dedupe:{request_id}`      | string | the entry id that decided it; expires after the dedupe window    |
| `P:gatekeeper:heartbeat:{consumer}` | string | a live worker's last beat; expires                        |

A connection record is one line of `|`-separated fields (ids never contain `|`; scopes hold only permission
names, spaces and `required:`):

    1|{status a|r}|{vehicle_id}|{granted mask, hex}|{required mask, hex}|{config version or empty}
     |{created, epoch ms}|{updated, epoch ms}|{scope or empty}        (one line; wrapped here)

The masks are bitmasks over the catalog's permissions in file order (bit i = i-th permission), so a grant of
any size costs a few bytes and a lookup is one GET. A vehicle record stores its capabilities as differences
from its powertrain's defaults (`adds`, `lacks`), so the usual vehicle is a short JSON object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.catalog import get_catalog
from schemas.connection import Connection, ConnectionStatus
from schemas.permissions import PermissionSet
from schemas.powertrain import Powertrain
from schemas.vehicle import Vehicle

CONNECTION_FORMAT = b"1"
_STATUS_CODES = {ConnectionStatus.ACTIVE: "a", ConnectionStatus.REVOKED: "r"}
_STATUS_OF_CODE = {code: status for status, code in _STATUS_CODES.items()}


@dataclass(frozen=True, slots=True)
class Keys:
    """Every key name fleetgate uses, under one prefix."""

    prefix: str = "fleetgate"

    def vehicle(self, vehicle_id: str) -> str:
        return f"{self.prefix}:vehicle:{vehicle_id}"

    @property
    def vehicle_pattern(self) -> str:
        return f"{self.prefix}:vehicle:*"

    def connection(self, connection_id: str) -> str:
        return f"{self.prefix}:conn:{connection_id}"

    def config(self, version: int) -> str:
        return f"{self.config_prefix}{version}"

    @property
    def config_prefix(self) -> str:
        return f"{self.prefix}:access:config:"

    @property
    def current_config(self) -> str:
        return f"{self.prefix}:access:current"

    @property
    def config_version(self) -> str:
        return f"{self.prefix}:access:version"

    @property
    def filters(self) -> str:
        return f"{self.prefix}:access:filters"

    @property
    def connection_events(self) -> str:
        return f"{self.prefix}:connection-events"

    @property
    def requests(self) -> str:
        return f"{self.prefix}:requests"

    @property
    def decisions(self) -> str:
        return f"{self.prefix}:decisions"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}:deadletter"

    @property
    def dedupe_prefix(self) -> str:
        """`P:dedupe:{request_id}` remembers a decided request id for the dedupe window."""
        return f"{self.prefix}:dedupe:"

    def heartbeat(self, consumer: str) -> str:
        return f"{self.heartbeat_prefix}{consumer}"

    @property
    def heartbeat_prefix(self) -> str:
        """`P:gatekeeper:heartbeat:{consumer}` exists while that worker is alive (it expires)."""
        return f"{self.prefix}:gatekeeper:heartbeat:"


def encode_connection(connection: Connection) -> bytes:
    granted = connection.permissions
    return "|".join(
        (
            CONNECTION_FORMAT.decode(),
            _STATUS_CODES[connection.status],
            connection.vehicle_id,
            f"{granted.granted:x}",
            f"{granted.required:x}",
            "" if connection.config_version is None else str(connection.config_version),
            str(_epoch_ms(connection.created_at)),
            str(_epoch_ms(connection.updated_at)),
            connection.scope or "",
        )
    ).encode()


def decode_connection(connection_id: str, record: bytes | str) -> Connection:
    text = record.decode() if isinstance(record, bytes) else record
    fmt, status, vehicle_id, granted, required, version, created, updated, scope = text.split("|")
    if fmt != CONNECTION_FORMAT.decode():
        raise ValueError(f"connection {connection_id}: unknown record format {fmt!r}")
    return Connection(
        id=connection_id,
        vehicle_id=vehicle_id,
        permissions=PermissionSet(int(granted, 16), int(required, 16)),
        config_version=int(version) if version else None,
        scope=scope or None,
        status=_STATUS_OF_CODE[status],
        created_at=_from_epoch_ms(created),
        updated_at=_from_epoch_ms(updated),
    )


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


def _epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _from_epoch_ms(text: str) -> datetime:
    return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
