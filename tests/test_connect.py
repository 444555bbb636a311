"""The Connect service on a real redis-server: each rule and error, versioning, events, concurrency."""

from __future__ import annotations

import asyncio
import json

import pytest
from redis.asyncio import Redis

from devtools.builders import make_vehicle
from schemas.access import VehicleAccessConfig
from schemas.connection import ConnectionStatus
from schemas.errors import AccessDeniedError, ScopeError, VehicleIncompatibleError
from schemas.grant import ConnectionFilters, FilterPowertrain
from schemas.messages import ConnectionEventMessage
from schemas.powertrain import Powertrain
from services.errors import NotFoundError, RevokedError
from services.keyspace import Keys
from services.registry import Authorization, ConnectService, Registry

SEED_CONFIG = VehicleAccessConfig.select(
    signals=["tractionbattery-stateofcharge", "charge-detailedchargingstatus", "odometer-traveleddistance"],
    required=["odometer-traveleddistance"],
)


async def events(redis: Redis, keys: Keys) -> list[ConnectionEventMessage]:
    entries = await redis.xrange(keys.connection_events) or []
    return [ConnectionEventMessage.model_validate_json((fields or {})[b"data"]) for _, fields in entries]


@pytest.fixture
async def seeded(registry: Registry) -> Registry:
    """A registry with the seed's config published and a BEV and an HEV registered."""
    await registry.publish_config(SEED_CONFIG)
    await registry.add_vehicles(
        [make_vehicle(Powertrain.BEV, vehicle_id="bev"), make_vehicle(Powertrain.HEV, vehicle_id="hev")]
    )
    return registry


async def test_authorize_grants_the_current_configs_permissions(
    seeded: Registry, connect_service: ConnectService, redis: Redis, keys: Keys
) -> None:
    """Connect requests the derived set; the owner's unchecks apply; the connection and its event are stored."""
    connection = await connect_service.authorize("bev", unchecked=["read_charge"])
    assert list(connection.permissions) == ["read_battery", "read_odometer"]
    assert connection.permissions.required_names == ["read_odometer"]
    assert (connection.config_version, connection.scope, connection.status) == (1, None, ConnectionStatus.ACTIVE)
    assert await seeded.connection(connection.id) == connection
    (event,) = await events(redis, keys)
    assert (event.type.value, event.connection_id, event.permissions) == (
        "connection.created",
        connection.id,
        connection.permissions,
    )


async def test_scope_override_replaces_the_config(seeded: Registry, connect_service: ConnectService) -> None:
    """A scope parameter overrides the derived set for that authorization and is kept in canonical form."""
    connection = await connect_service.authorize("bev", scope="read_vin  required:read_location read_vin")
    assert list(connection.permissions) == ["read_location", "read_vin"]
    assert (connection.config_version, connection.scope) == (None, "required:read_location read_vin")
    assert await seeded.connection(connection.id) == connection


@pytest.mark.parametrize(
    ("kwargs", "error", "code"),
    [
        ({"unchecked": ["read_odometer"]}, AccessDeniedError, "access_denied"),
        ({"scope": "read_vin", "unchecked": ["read_vin"]}, AccessDeniedError, "access_denied"),
        ({"scope": "read_vim"}, ScopeError, "configuration_error"),
    ],
)
@pytest.mark.usefixtures("seeded")
async def test_refused_authorizations_write_nothing(
    connect_service: ConnectService,
    redis: Redis,
    keys: Keys,
    kwargs: dict[str, object],
    error: type[Exception],
    code: str,
) -> None:
    """Unchecking a required permission, leaving none, or a malformed scope: Connect's error, nothing stored."""
    with pytest.raises(error) as raised:
        await connect_service.authorize("bev", **kwargs)  # type: ignore[arg-type]
    assert raised.value.code == code  # type: ignore[attr-defined]
    assert await events(redis, keys) == []
    assert [k async for k in redis.scan_iter(match=keys.connection("*"))] == []


@pytest.mark.usefixtures("seeded")
async def test_unknown_permission_in_uncheck_is_an_error(
    connect_service: ConnectService, redis: Redis, keys: Keys
) -> None:
    """Unchecking a name that is not a permission names it, suggests the right one, and writes nothing."""
    with pytest.raises(ValueError, match="did you mean 'read_charge'"):
        await connect_service.authorize("bev", unchecked=["read_charges"])
    assert await events(redis, keys) == []
    assert [k async for k in redis.scan_iter(match=keys.connection("*"))] == []


async def test_connection_filters_apply(seeded: Registry, connect_service: ConnectService) -> None:
    """A filtered-out powertrain is vehicle_incompatible; ICE covers HEV; UNKNOWN follows allow_unknown."""
    await seeded.set_filters(ConnectionFilters(powertrains=frozenset({FilterPowertrain.BEV}), allow_unknown=False))
    with pytest.raises(VehicleIncompatibleError):
        await connect_service.authorize("hev")
    await seeded.add_vehicle(make_vehicle(Powertrain.UNKNOWN, vehicle_id="unknown"))
    with pytest.raises(VehicleIncompatibleError, match="UNKNOWN"):
        await connect_service.authorize("unknown")
    await seeded.set_filters(ConnectionFilters(powertrains=frozenset({FilterPowertrain.ICE}), allow_unknown=True))
    assert (await connect_service.authorize("hev")).vehicle_id == "hev"
    assert (await connect_service.authorize("unknown")).vehicle_id == "unknown"
    with pytest.raises(VehicleIncompatibleError):
        await connect_service.authorize("bev")


@pytest.mark.usefixtures("seeded")
async def test_unknown_vehicle_and_connection(connect_service: ConnectService) -> None:
    """Authorizing an unregistered vehicle, or re-authorizing / revoking an unknown connection, is NotFound."""
    with pytest.raises(NotFoundError, match="'ghost'"):
        await connect_service.authorize("ghost")
    with pytest.raises(NotFoundError, match="'c-ghost'"):
        await connect_service.reauthorize("c-ghost")
    with pytest.raises(NotFoundError, match="'c-ghost'"):
        await connect_service.revoke("c-ghost")


async def test_new_config_changes_only_future_authorizations(seeded: Registry, connect_service: ConnectService) -> None:
    """Publishing a new version leaves existing connections alone; re-auth picks the new set up."""
    existing = await connect_service.authorize("bev")
    await seeded.publish_config(VehicleAccessConfig.select(signals=["wheel-tires"], commands=["lock"]))
    assert await seeded.connection(existing.id) == existing
    reauthorized = await connect_service.reauthorize(existing.id)
    assert list(reauthorized.permissions) == ["control_security", "read_tires"]
    assert reauthorized.config_version == 2
    assert reauthorized.created_at == existing.created_at
    assert list((await connect_service.authorize("hev")).permissions) == ["control_security", "read_tires"]


async def test_revocation_is_final(seeded: Registry, connect_service: ConnectService, redis: Redis, keys: Keys) -> None:
    """A revoked connection cannot be re-authorized or revoked again; one event per change, in order."""
    connection = await connect_service.authorize("bev")
    await connect_service.reauthorize(connection.id, scope="read_vin")
    revoked = await connect_service.revoke(connection.id)
    assert revoked.status is ConnectionStatus.REVOKED
    with pytest.raises(RevokedError, match="revocation is final"):
        await connect_service.reauthorize(connection.id)
    with pytest.raises(RevokedError, match="already revoked"):
        await connect_service.revoke(connection.id)
    history = await events(redis, keys)
    assert [e.type.value for e in history] == ["connection.created", "connection.reauthorized", "connection.revoked"]
    assert list(history[-1].permissions) == ["read_vin"]
    assert await seeded.connection(connection.id) == revoked


async def test_concurrent_reauths_and_a_revoke_end_revoked_and_consistent(
    seeded: Registry, connect_service: ConnectService, redis: Redis, keys: Keys
) -> None:
    """Many racing re-auths and one revoke: the connection ends revoked and the event history replays to it."""
    connection = await connect_service.authorize("bev")
    services = [ConnectService(Registry(redis, keys)) for _ in range(4)]
    scopes = ["read_vin", "read_location", "required:read_tires", "read_odometer read_vin"]

    async def reauth(i: int) -> str:
        try:
            await services[i % 4].reauthorize(connection.id, scope=scopes[i % 4])
        except RevokedError:
            return "refused"
        return "done"

    tasks = [reauth(i) for i in range(40)]
    tasks.insert(20, connect_service.revoke(connection.id))  # type: ignore[arg-type]
    results = await asyncio.gather(*tasks)
    final = await seeded.connection(connection.id)
    assert final.status is ConnectionStatus.REVOKED
    history = await events(redis, keys)
    assert history[0].type.value == "connection.created"
    assert [e.type.value for e in history].count("connection.revoked") == 1
    assert history[-1].type.value == "connection.revoked"
    reauths = sum(1 for e in history if e.type.value == "connection.reauthorized")
    assert reauths == sum(1 for r in results if r == "done")
    assert history[-1].permissions == final.permissions  # the log replays to the stored record
    assert json.loads(history[-1].encode())["connection_id"] == connection.id


async def test_authorize_many_is_all_or_nothing(
    seeded: Registry, connect_service: ConnectService, redis: Redis, keys: Keys
) -> None:
    """Bulk authorization stores every connection, or none when one of them is refused."""
    with pytest.raises(AccessDeniedError):
        await connect_service.authorize_many([Authorization("bev"), Authorization("hev", unchecked=("read_odometer",))])
    assert await events(redis, keys) == []
    made = await connect_service.authorize_many([Authorization("bev"), Authorization("hev", scope="read_fuel")])
    assert [c.vehicle_id for c in made] == ["bev", "hev"]
    assert [await seeded.connection(c.id) for c in made] == made
    assert len(await events(redis, keys)) == 2
