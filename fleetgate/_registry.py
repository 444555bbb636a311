"""Running a CLI command against the registry: settings, one Redis client, clear errors when Redis is away."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import typer

from schemas.connection import Connection
from schemas.vehicle import Vehicle
from services.errors import RedisUnavailableError
from services.redis_client import REDIS_ERRORS, client_for, redact, refuse_eviction
from services.registry import AppStore, Registry
from services.settings import Settings

T = TypeVar("T")

AppOption = Annotated[
    str,
    typer.Option(
        "--app",
        help="The application (its client id; fleetgate apps list) [default: the default app].",
        show_default=False,
    ),
]

RedisUrlOption = Annotated[
    str | None,
    typer.Option(
        "--redis-url",
        help="Redis to use (default: $FLEETGATE_REDIS_URL, else redis://127.0.0.1:6379/0).",
        show_default=False,
    ),
]


def settings_for(redis_url: str | None) -> Settings:
    """The settings, with `--redis-url` (when given) in place of $FLEETGATE_REDIS_URL."""
    return Settings() if redis_url is None else Settings(redis_url=redis_url)


def run(
    redis_url: str | None,
    work: Callable[[Registry], Awaitable[T]],
    *,
    refuse_evicting: bool = True,
    socket_timeout_s: float | None = None,
) -> T:
    """Run `work` with a registry on the configured Redis (key prefix from $FLEETGATE_KEY_PREFIX).

    Refused (EvictionPolicyError) on a Redis that may evict keys, unless FLEETGATE_ALLOW_EVICTION is set or the
    command reports the policy itself (`refuse_evicting=False`).
    """
    settings = settings_for(redis_url)

    async def main() -> T:
        client = client_for(settings, socket_timeout_s)
        try:
            if refuse_evicting:
                await refuse_eviction(client, settings)
            return await work(Registry(client, settings.keys))
        except REDIS_ERRORS as exc:
            # redis-py's messages name host and port, never the password; the URL is redacted all the same.
            raise RedisUnavailableError(f"Redis at {redact(settings.redis_url)}: {exc}") from exc
        finally:
            await client.aclose()

    return asyncio.run(main())


async def existing_app(registry: Registry, app_id: str) -> str:
    """`app_id`, once the app is known to exist (NotFoundError otherwise: a typo must not create an app's data)."""
    return (await AppStore(registry.redis, registry.keys).get(app_id)).id


def connection_json(connection: Connection) -> dict[str, Any]:
    source = (
        {"scope": connection.scope} if connection.scope is not None else {"config_version": connection.config_version}
    )
    return {
        "connection_id": connection.id,
        "vehicle_id": connection.vehicle_id,
        "app_id": connection.app_id,
        "user_id": connection.user_id,
        "permissions": connection.permissions.items(),
        "status": connection.status.value,
        "source": source,
        "created_at": _time(connection.created_at),
        "updated_at": _time(connection.updated_at),
    }


def vehicle_json(vehicle: Vehicle) -> dict[str, Any]:
    return {
        "vehicle_id": vehicle.id,
        "vin": vehicle.vin,
        "make": vehicle.make,
        "model": vehicle.model,
        "year": vehicle.year,
        "powertrain": vehicle.powertrain.value,
        "capabilities": sorted(vehicle.capabilities),
    }


def _time(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
