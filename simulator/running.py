"""What a load test finds running on its prefix before it starts its own processes: gatekeeper workers and
vehicles services, by their heartbeats, and what to tell the user when they will share the load."""

from __future__ import annotations

from dataclasses import dataclass

from services.keyspace import Keys
from services.redis_client import Client
from services.streams import live_consumers


@dataclass(frozen=True, slots=True)
class Running:
    """Gatekeeper workers and vehicles services found beating on the prefix before the run started its own."""

    gatekeeper_names: frozenset[str]
    vehicles_names: frozenset[str]

    @property
    def gatekeepers(self) -> int:
        return len(self.gatekeeper_names)

    @property
    def vehicle_services(self) -> int:
        return len(self.vehicles_names)


async def find_running(redis: Client, keys: Keys) -> Running:
    """The live gatekeeper workers and vehicles services on the prefix, by their heartbeats."""
    gatekeepers = await live_consumers(redis, keys)
    vehicles = await live_consumers(redis, keys, prefix=keys.vehicles_heartbeat_prefix)
    return Running(frozenset(gatekeepers), frozenset(vehicles))


def sharing_warnings(prefix: str, gatekeepers: int, vehicle_services: int, running: Running) -> list[str]:
    """What to tell the user when processes the run did not start (it starts `gatekeepers` and `vehicle_services`)
    will share its load unasked."""
    warnings = []
    if gatekeepers and running.gatekeepers:
        warnings.append(
            f"{running.gatekeepers} gatekeeper worker(s) already running on prefix {prefix!r} will share the "
            f"load with the {gatekeepers} this run starts: the throughput reported is theirs together "
            "(--external-gatekeeper uses only them; or stop them)"
        )
    if vehicle_services and running.vehicle_services:
        warnings.append(
            f"{running.vehicle_services} vehicles service(s) already running on prefix {prefix!r} will "
            "answer part of the load with the one this run starts (--external-vehicles uses only them; or stop them)"
        )
    return warnings
