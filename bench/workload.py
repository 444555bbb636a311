"""A realistic fleet in a registry and a stream of request payloads against it, for the gatekeeper benchmarks."""

from __future__ import annotations

import json
import random
from itertools import count as counter

from schemas.access import VehicleAccessConfig
from schemas.catalog import get_catalog
from schemas.powertrain import Powertrain
from schemas.vehicle import Vehicle, placeholder_vin
from services.keyspace import Keys
from services.redis_client import Client
from services.registry import Authorization, ConnectService, Registry

POWERTRAINS = [Powertrain.ICE] * 40 + [Powertrain.HEV] * 15 + [Powertrain.PHEV] * 15 + [Powertrain.BEV] * 29
POWERTRAINS.append(Powertrain.UNKNOWN)


def plain_fleet(count: int, rng: random.Random) -> list[Vehicle]:
    """`veh-000000` onwards, one make and model, powertrains in roughly the field's shares."""
    return [
        Vehicle.with_defaults(
            id=f"veh-{i:06d}",
            vin=placeholder_vin(f"veh-{i:06d}"),
            make="Make",
            model="Model",
            year=2015 + i % 10,
            powertrain=rng.choice(POWERTRAINS),
        )
        for i in range(count)
    ]


async def register_fleet(redis: Client, keys: Keys, vehicles: int, seed: int) -> list[tuple[str, str]]:
    """Register `vehicles` vehicles, each with one connection; returns (vehicle_id, connection_id) pairs."""
    rng = random.Random(seed)
    catalog = get_catalog()
    registry = Registry(redis, keys)
    signals = rng.sample([s.code for s in catalog.signals], 12)
    commands = ["lock", "unlock", "start-charge"]
    await registry.publish_config(VehicleAccessConfig.select(signals=signals, commands=commands))
    fleet = plain_fleet(vehicles, rng)
    await registry.add_vehicles(fleet)
    permissions = {catalog.signal_or_command(name).permission for name in (*signals, *commands)}
    authorizations = [Authorization(v.id, unchecked=tuple(p for p in permissions if rng.random() < 0.1)) for v in fleet]
    # An owner may not uncheck everything: keep the first permission in that case.
    authorizations = [
        a if len(a.unchecked) < len(permissions) else Authorization(a.vehicle_id, unchecked=a.unchecked[1:])
        for a in authorizations
    ]
    connections = await ConnectService(registry).authorize_many(authorizations)
    return [(c.vehicle_id, c.id) for c in connections]


def request_payloads(pairs: list[tuple[str, str]], count: int, seed: int, run: str = "q") -> list[bytes]:
    """`count` request payloads: popular signals and some commands, with a few bad and unknown ones.

    Request ids start with `run`, so runs sharing a dedupe window do not dedupe each other.
    """
    rng = random.Random(seed)
    catalog = get_catalog()
    signals = [s.code for s in catalog.signals]
    popular = signals[:20]
    examples = {c.name: c.example_params for c in catalog.commands}
    ids = counter()
    payloads = []
    for _ in range(count):
        vehicle_id, connection_id = rng.choice(pairs)
        body: dict[str, object] = {
            "request_id": f"{run}-{next(ids)}",
            "connection_id": connection_id,
            "vehicle_id": vehicle_id,
            "kind": "signal",
            "target": rng.choice(popular) if rng.random() < 0.7 else rng.choice(signals),
            "issued_at": "2026-11-28T12:00:00Z",
        }
        roll = rng.random()
        if roll < 0.1:
            command = rng.choice(list(examples))
            body |= {"kind": "command", "target": command, "params": examples[command] or None}
        elif roll < 0.12:
            body["connection_id"] = "c-unknown"
        elif roll < 0.13:
            body["target"] = "no-such-signal"
        payloads.append(json.dumps(body, separators=(",", ":")).encode())
    return payloads


def one_request_per_pair(
    pairs: list[tuple[str, str]], run: str, target: str = "odometer-traveleddistance"
) -> list[bytes]:
    """A signal request for each (vehicle, connection): decided, they leave a worker's cache warm."""
    return [
        json.dumps(
            {
                "request_id": f"{run}-{n}",
                "connection_id": connection_id,
                "vehicle_id": vehicle_id,
                "kind": "signal",
                "target": target,
                "issued_at": "2026-11-28T12:00:00Z",
            },
            separators=(",", ":"),
        ).encode()
        for n, (vehicle_id, connection_id) in enumerate(pairs)
    ]


def with_issued_at(payload: bytes, issued_at: str) -> bytes:
    """The payload with a fresh `issued_at` (for open-loop runs that measure latency from it)."""
    return payload.replace(b'"issued_at":"2026-11-28T12:00:00Z"', b'"issued_at":"' + issued_at.encode() + b'"')


async def fill(redis: Client, stream: str, payloads: list[bytes], chunk: int = 2000) -> None:
    """XADD every payload as field `data`, pipelined."""
    for start in range(0, len(payloads), chunk):
        async with redis.pipeline(transaction=False) as pipe:
            for payload in payloads[start : start + chunk]:
                pipe.xadd(stream, {"data": payload})
            await pipe.execute()
