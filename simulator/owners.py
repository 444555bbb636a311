"""Owners: each runs Connect for their vehicle, maybe unchecking optional permissions; during a load some revoke
and some re-authenticate, granting what they had unchecked. The simulator records what it granted itself.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from schemas.access import VehicleAccessConfig, derive
from schemas.application import DEFAULT_APP_ID
from schemas.permissions import PermissionSet
from schemas.scope import render_scope
from schemas.vehicle import Vehicle
from services.registry import Authorization, ConnectService, Registry
from services.registry.config_file import parse_config
from simulator.world import Grant, OwnerChange, SimVehicle, World


@dataclass(frozen=True, slots=True)
class OwnerBehaviour:
    uncheck: float = 0.15
    """Chance that an owner unchecks each optional permission on the grant screen."""
    revoke: float = 0.02
    """Chance that an owner revokes during the load."""
    reauth: float = 0.03
    """Chance that an owner who unchecked something re-authenticates during the load, granting everything."""

    def __post_init__(self) -> None:
        for name in ("uncheck", "revoke", "reauth"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a probability between 0 and 1, not {getattr(self, name)}")


def default_app_config() -> VehicleAccessConfig:
    """The simulated app's selection (simulator/app.toml)."""
    text = resources.files("simulator").joinpath("app.toml").read_text()
    return parse_config(text, source="simulator/app.toml")


async def connect_owners(
    registry: Registry, fleet: Sequence[Vehicle], behaviour: OwnerBehaviour, seed: int, app_id: str = DEFAULT_APP_ID
) -> World:
    """Authorize, for the app, every vehicle its Connection Filters admit against its current config; the World that
    results (a vehicle the filters refuse has no connection in it). Owners' later re-auths and revocations act on these
    connections, so on the same app."""
    rng = random.Random(seed)
    config = await registry.config(app_id=app_id)
    filters = await registry.filters(app_id)
    requested = derive(config)
    optional = [name for name in requested if not requested.is_required(name)]
    admitted = [v for v in fleet if filters.admits(v.powertrain)]
    authorizations = []
    for vehicle in admitted:
        unchecked = tuple(name for name in optional if rng.random() < behaviour.uncheck)
        if len(unchecked) == len(requested):  # at least one permission must remain checked
            unchecked = unchecked[1:]
        authorizations.append(Authorization(vehicle.id, unchecked=unchecked))
    connections = await ConnectService(registry).authorize_many(authorizations, app_id=app_id)
    grants = {
        a.vehicle_id: (c.id, Grant(frozenset(requested) - frozenset(a.unchecked)))
        for a, c in zip(authorizations, connections, strict=True)
    }
    profiles: dict[frozenset[str], int] = {}
    vehicles = []
    for vehicle in fleet:
        connection_id, grant = grants.get(vehicle.id, (None, None))
        profile = profiles.setdefault(vehicle.capabilities, len(profiles))
        vehicles.append(SimVehicle(vehicle.id, vehicle.make, vehicle.powertrain, profile, connection_id, grant))
    return World(
        vehicles=tuple(vehicles),
        profiles=tuple(profiles),
        selected_signals=tuple(s.code for s in config.signals),
        selected_commands=tuple(c.name for c in config.commands),
    )


def plan_changes(
    world: World, requested: PermissionSet, behaviour: OwnerBehaviour, duration_s: float, seed: int
) -> World:
    """The world with owners' revocations and re-auths scheduled between 10 % and 80 % of the load."""
    rng = random.Random(seed ^ 0x5EED)
    everything = Grant(frozenset(requested))
    scope = render_scope(requested)
    changes = []
    for vehicle in world.vehicles:
        if vehicle.connection_id is None or vehicle.grant is None:
            continue
        roll, at_s = rng.random(), rng.uniform(0.1, 0.8) * duration_s
        if roll < behaviour.revoke:
            changes.append(OwnerChange(at_s, vehicle.connection_id, "revoke", Grant(vehicle.grant.permissions, False)))
        elif roll < behaviour.revoke + behaviour.reauth and vehicle.grant != everything:
            changes.append(OwnerChange(at_s, vehicle.connection_id, "reauth", everything, scope))
    changes.sort(key=lambda change: change.at_s)
    return World(world.vehicles, world.profiles, world.selected_signals, world.selected_commands, tuple(changes))


async def apply_change(connect: ConnectService, change: OwnerChange) -> None:
    if change.kind == "revoke":
        await connect.revoke(change.connection_id)
    else:
        await connect.reauthorize(change.connection_id, scope=change.scope)
