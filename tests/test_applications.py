"""Applications on a real redis-server: secrets, management tokens, per-app configs and filters, connections of
an app and a user, and the old connection records read as the default app's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from devtools.builders import make_vehicle
from schemas.access import VehicleAccessConfig
from schemas.application import DEFAULT_APP_ID, Application, AppMode
from schemas.connection import ConnectionStatus
from schemas.errors import VehicleIncompatibleError
from schemas.grant import ConnectionFilters, FilterPowertrain
from schemas.messages import ConnectionEventMessage
from schemas.powertrain import Powertrain
from services.errors import NotFoundError, ServiceError
from services.keyspace import Keys
from services.registry import AppStore, ConnectService, Registry
from services.registry.apps import CreatedApp
from services.registry.records import decode_connection, encode_connection
from tests.redis_dump import stored_text

ODOMETER = VehicleAccessConfig.select(signals=["odometer-traveleddistance"], required=["odometer-traveleddistance"])
LOCATION = VehicleAccessConfig.select(signals=["location-preciselocation"])


@pytest.fixture
def apps(redis: Redis, keys: Keys) -> AppStore:
    return AppStore(redis, keys)


async def test_a_created_app_authenticates_with_its_secret_only(apps: AppStore) -> None:
    """The secret printed at creation authenticates the client; a wrong one, or another app's id, does not."""
    created = await apps.create("Fleet app", ["https://app.example/callback"], AppMode.TEST)
    other = await apps.create("Other", ["https://other.example/cb"])
    assert await apps.authenticate_client(created.app.id, created.client_secret) == created.app
    assert await apps.authenticate_client(created.app.id, created.client_secret + "x") is None
    assert await apps.authenticate_client(other.app.id, created.client_secret) is None
    assert await apps.authenticate_client("no-such-app", created.client_secret) is None
    assert (await apps.get(created.app.id)).mode is AppMode.TEST


async def test_secrets_are_stored_hashed(apps: AppStore, redis: Redis, keys: Keys) -> None:
    """Neither the client secret nor the management token is anywhere in Redis in clear."""
    created = await apps.create("Fleet app", ["https://app.example/callback"])
    stored = await stored_text(redis, keys.prefix)
    assert "secret_hashes" in stored  # what was read holds the app's record
    assert created.client_secret not in stored
    assert created.management_token not in stored


async def test_rotation_keeps_the_three_newest_secrets(apps: AppStore) -> None:
    """After three rotations the first secret stops working; the other three still work."""
    created = await apps.create("Fleet app", ["https://app.example/callback"])
    rotated = [await apps.rotate_secret(created.app.id) for _ in range(3)]
    assert await apps.authenticate_client(created.app.id, created.client_secret) is None
    for secret in rotated:
        assert await apps.authenticate_client(created.app.id, secret) is not None
    assert (await apps.get(created.app.id)).secrets == 3


async def test_a_management_token_names_its_app(apps: AppStore) -> None:
    """The management token resolves to its own app; anything else to none."""
    first = await apps.create("First", ["https://first.example/cb"])
    second = await apps.create("Second", ["https://second.example/cb"])
    assert await apps.app_of_management_token(first.management_token) == first.app
    assert await apps.app_of_management_token(second.management_token) == second.app
    assert await apps.app_of_management_token(first.client_secret) is None


async def test_the_default_app_exists_and_lists_first(apps: AppStore) -> None:
    """With nothing stored the default app is there; created apps follow it, oldest first."""
    assert [a.id for a in await apps.all()] == [DEFAULT_APP_ID]
    created = await apps.create("Fleet app", ["https://app.example/callback"])
    assert [a.id for a in await apps.all()] == [DEFAULT_APP_ID, created.app.id]
    with pytest.raises(NotFoundError, match="unknown application"):
        await apps.get("nope")


@pytest.mark.parametrize("uri", ["ftp://x.example/cb", "app.example/cb", "https://x.example/cb#frag", "https:// x"])
async def test_a_redirect_uri_must_be_absolute_http(apps: AppStore, uri: str) -> None:
    """Registration refuses a redirect URI that is not absolute http(s) or has a fragment."""
    with pytest.raises(ServiceError, match="redirect URI"):
        await apps.create("Bad", [uri])


def test_redirect_uri_matches_exactly_or_defaults_to_the_first() -> None:
    """No prefix or case games: only an exact registered URI, or the first one when none is asked for."""
    uris = ("https://a.example/cb", "http://localhost:3000/cb")
    app = Application(id="a", name="A", redirect_uris=uris, created_at=datetime.now(UTC))
    assert app.redirect_uri(None) == "https://a.example/cb"
    assert app.redirect_uri("http://localhost:3000/cb") == "http://localhost:3000/cb"
    assert app.redirect_uri("https://a.example/cb/../evil") is None
    assert app.redirect_uri("https://A.example/cb") is None
    assert app.redirect_uri("https://evil.example/cb") is None


async def test_each_app_has_its_own_configs_and_filters(registry: Registry) -> None:
    """Publishing for one app changes neither the default app's current config nor its version numbers."""
    await registry.publish_config(ODOMETER)
    published = await registry.publish_config(LOCATION, app_id="other")
    await registry.set_filters(ConnectionFilters(powertrains=frozenset({FilterPowertrain.BEV})), app_id="other")
    assert published.version == 1
    assert (await registry.config()).signals == ODOMETER.signals
    assert (await registry.config(app_id="other")).signals == LOCATION.signals
    assert await registry.filters() == ConnectionFilters()
    with pytest.raises(NotFoundError, match="for app 'third'"):
        await registry.config(app_id="third")


async def test_a_vehicle_connects_to_two_apps_with_their_own_grants(
    registry: Registry, connect_service: ConnectService, redis: Redis, keys: Keys
) -> None:
    """One vehicle, two apps: each connection has its app's permissions, filters, user, and event app id."""
    await registry.publish_config(ODOMETER)
    await registry.publish_config(LOCATION, app_id="other")
    await registry.set_filters(ConnectionFilters(powertrains=frozenset({FilterPowertrain.ICE})), app_id="other")
    await registry.add_vehicles([make_vehicle(Powertrain.ICE, vehicle_id="v1"), make_vehicle(vehicle_id="v2")])
    default = await connect_service.authorize("v1")
    other = await connect_service.connect("other", "user-1", "v1")
    assert (default.app_id, default.user_id, list(default.permissions)) == (DEFAULT_APP_ID, None, ["read_odometer"])
    assert (other.app_id, other.user_id, list(other.permissions)) == ("other", "user-1", ["read_location"])
    with pytest.raises(VehicleIncompatibleError):
        await connect_service.connect("other", "user-1", "v2")
    await connect_service.authorize("v2")  # the default app has no filters
    entries = await redis.xrange(keys.connection_events) or []
    events = [ConnectionEventMessage.model_validate_json((f or {})[b"data"]) for _, f in entries]
    assert [(e.app_id, e.user_id) for e in events] == [(DEFAULT_APP_ID, None), ("other", "user-1"), ("default", None)]


async def test_connecting_again_reauthorizes_the_users_connection(
    registry: Registry, connect_service: ConnectService
) -> None:
    """The same user connecting the same vehicle to the same app re-authorizes the connection it has."""
    await registry.publish_config(LOCATION, app_id="other")
    await registry.add_vehicle(make_vehicle(Powertrain.BEV, vehicle_id="v1"))
    first = await connect_service.connect("other", "user-1", "v1", scope="read_odometer read_vin")
    again = await connect_service.connect("other", "user-1", "v1", scope="read_vin")
    assert again.id == first.id
    assert list(again.permissions) == ["read_vin"]
    assert [c.id for c in await registry.user_connections("other", "user-1")] == [first.id]


async def test_revoked_connections_leave_the_users_list(registry: Registry, connect_service: ConnectService) -> None:
    """A user's list holds active connections only; after a revocation, connecting anew makes a new one."""
    await registry.add_vehicles([make_vehicle(Powertrain.BEV, vehicle_id=v) for v in ("v1", "v2")])
    first = await connect_service.connect("other", "u", "v1", scope="read_vin")
    second = await connect_service.connect("other", "u", "v2", scope="read_vin")
    await connect_service.revoke(first.id)
    assert [c.id for c in await registry.user_connections("other", "u")] == [second.id]
    renewed = await connect_service.connect("other", "u", "v1", scope="read_vin")
    assert renewed.id != first.id
    assert renewed.status is ConnectionStatus.ACTIVE
    assert await registry.user_connections("other", "someone-else") == []


def test_a_connection_record_of_before_applications_reads_as_the_default_apps() -> None:
    """Format 1 records (nine fields) decode with the default app and no user; format 2 round-trips both."""
    old = "1|a|veh-1|1|0|3|1764000000000|1764000000000|"
    connection = decode_connection("c-1", old)
    assert (connection.app_id, connection.user_id, connection.vehicle_id) == (DEFAULT_APP_ID, None, "veh-1")
    mine = decode_connection("c-2", encode_connection(connection).replace(b"|default|", b"|mine|", 1) + b"u-9")
    assert (mine.app_id, mine.user_id) == ("mine", "u-9")
    assert decode_connection("c-2", encode_connection(mine)) == mine


async def test_a_deleted_app_is_gone_with_its_management_token(apps: AppStore) -> None:
    """Deleting an app removes it from the list and voids its management token and secret; the default app
    cannot be deleted."""
    created = await apps.create("Doomed", ["https://doomed.example/cb"])
    assert await apps.delete(created.app.id)
    assert not await apps.delete(created.app.id)
    assert [a.id for a in await apps.all()] == [DEFAULT_APP_ID]
    assert await apps.app_of_management_token(created.management_token) is None
    assert await apps.authenticate_client(created.app.id, created.client_secret) is None
    with pytest.raises(ServiceError, match="cannot be deleted"):
        await apps.delete(DEFAULT_APP_ID)


def test_a_created_apps_repr_hides_its_secrets() -> None:
    """What a log line or a test failure prints of a just-created app names it, never its secret or token."""
    app = Application(id="app-1", name="App", created_at=None)
    created = CreatedApp(app, client_secret="s3cret-value", management_token="tok-value")
    assert "app-1" in repr(created)
    assert "s3cret-value" not in repr(created)
    assert "tok-value" not in repr(created)
