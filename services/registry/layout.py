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
from dataclasses import dataclass, field
from datetime import UTC, datetime

from schemas.catalog import get_catalog
from schemas.connection import Connection, ConnectionStatus
from schemas.permissions import PermissionSet
from schemas.powertrain import Powertrain
from schemas.vehicle import Vehicle
from services.registry.sharding import shard_of, shard_tag

CONNECTION_FORMAT = b"1"
_STATUS_CODES = {ConnectionStatus.ACTIVE: "a", ConnectionStatus.REVOKED: "r"}
_STATUS_OF_CODE = {code: status for status, code in _STATUS_CODES.items()}


@dataclass(frozen=True, slots=True)
class ShardKeys:
    """The keys of one shard: its streams, and the prefix of its dedupe keys, all under one hash tag."""

    index: int
    requests: str
    decisions: str
    deadletter: str
    dedupe_prefix: str
    """`dedupe_prefix + request_id` remembers a decided request id for the dedupe window."""
    connection_events: str
    """The `connection.*` events of the connections of this shard."""


@dataclass(frozen=True, slots=True)
class Keys:
    """Every key name fleetgate uses, under one prefix, for `shards` shards (sharding.py).

    With one shard the names are the unsharded ones of the table above. With more, each shard's streams, dedupe
    keys and connections carry the shard's hash tag (`P:{s3.3}:requests`, `P:{s3.3}:conn:{connection_id}`) and
    the Vehicle Access keys the tag `{access}`, so that every script's keys share a slot on a Redis Cluster.
    Vehicles keep their own names: each is read and written alone, and spreads over the cluster by its id.
    """

    prefix: str = "fleetgate"
    shards: int = 1
    _shard_keys: tuple[ShardKeys, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.shards < 1:
            raise ValueError(f"shards must be at least 1, not {self.shards}")
        object.__setattr__(self, "_shard_keys", tuple(self._build_shard(i) for i in range(self.shards)))

    def _build_shard(self, index: int) -> ShardKeys:
        base = self._tagged(index)
        return ShardKeys(
            index=index,
            requests=f"{base}requests",
            decisions=f"{base}decisions",
            deadletter=f"{base}deadletter",
            dedupe_prefix=f"{base}dedupe:",
            connection_events=f"{base}connection-events",
        )

    def _tagged(self, index: int) -> str:
        """`P:` unsharded, `P:{tag}:` for a shard of several."""
        return f"{self.prefix}:" if self.shards == 1 else f"{self.prefix}:{{{shard_tag(index, self.shards)}}}:"

    @property
    def sharded(self) -> bool:
        return self.shards > 1

    @property
    def all_shards(self) -> tuple[ShardKeys, ...]:
        return self._shard_keys

    def shard(self, index: int) -> ShardKeys:
        return self._shard_keys[index]

    def shard_of_vehicle(self, vehicle_id: str) -> ShardKeys:
        """Where a vehicle's requests go (and so its decisions come from): one shard, so they stay in order."""
        return self._shard_keys[shard_of(vehicle_id, self.shards)]

    def shard_of_connection(self, connection_id: str) -> ShardKeys:
        """The shard holding a connection's record and its events."""
        return self._shard_keys[shard_of(connection_id, self.shards)]

    def vehicle(self, vehicle_id: str) -> str:
        return f"{self.prefix}:vehicle:{vehicle_id}"

    @property
    def vehicle_pattern(self) -> str:
        return f"{self.prefix}:vehicle:*"

    def connection(self, connection_id: str) -> str:
        if self.shards == 1:
            return f"{self.prefix}:conn:{connection_id}"
        return f"{self._tagged(shard_of(connection_id, self.shards))}conn:{connection_id}"

    def config(self, version: int) -> str:
        return f"{self.config_prefix}{version}"

    @property
    def _access(self) -> str:
        return f"{self.prefix}:access:" if self.shards == 1 else f"{self.prefix}:{{access}}:access:"

    @property
    def config_prefix(self) -> str:
        return f"{self._access}config:"

    @property
    def current_config(self) -> str:
        return f"{self._access}current"

    @property
    def config_version(self) -> str:
        return f"{self._access}version"

    @property
    def filters(self) -> str:
        return f"{self._access}filters"

    # The unsharded streams: with several shards each lives in `shard(i)`, and asking for "the" one is a bug.

    @property
    def connection_events(self) -> str:
        return self._only_shard.connection_events

    @property
    def requests(self) -> str:
        return self._only_shard.requests

    @property
    def decisions(self) -> str:
        return self._only_shard.decisions

    @property
    def deadletter(self) -> str:
        return self._only_shard.deadletter

    @property
    def dedupe_prefix(self) -> str:
        """`P:dedupe:{request_id}` remembers a decided request id for the dedupe window."""
        return self._only_shard.dedupe_prefix

    @property
    def _only_shard(self) -> ShardKeys:
        if self.shards != 1:
            raise ValueError(f"with {self.shards} shards each has its own streams: name one with keys.shard(i)")
        return self._shard_keys[0]

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
