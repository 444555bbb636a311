"""`fleetgate serve`: the HTTP faces (Connect, tokens, the vehicle API) on uvicorn, optionally with a gatekeeper
worker and the vehicles service in the same process (`--with-workers`): one command, a working local Smartcar.
It always runs a usage consumer too (services/insights/usage.py): the hourly counts the advice pages read.

The composition root of the HTTP app: it hands the simulator's accounts (simulator/accounts.py) to services.http.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Annotated

import typer

from fleetgate._output import reporting_errors
from fleetgate._registry import RedisUrlOption
from schemas.application import AppMode
from services.demo_redis import demo_redis
from services.errors import RedisUnavailableError
from services.eventloop import run_loop
from services.gatekeeper.worker import Gatekeeper
from services.gatekeeper.worker import serve as serve_gatekeeper
from services.http import HttpContext, create_app
from services.http.server import base_url, bind, make_server
from services.insights.usage import UsageConsumer
from services.redis_client import REDIS_ERRORS, Client, client_for, redact
from services.registry import AppStore, Registry
from services.settings import ENV_PREFIX, Settings
from services.webhooks.worker import WebhookWorker
from simulator.accounts import SimulatorAccounts
from simulator.owners import default_app_config
from simulator.vehicles.service import VehicleService
from simulator.vehicles.service import serve as serve_vehicles

LOCAL_APP_NAME = "fleetgate local app"
DEFAULT_REDIRECT_URI = "http://localhost:8080/callback"


def serve_command(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: $FLEETGATE_HTTP_HOST, else 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="Port to listen on (default: $FLEETGATE_HTTP_PORT, else 8000).", min=0, max=65535),
    ] = None,
    with_workers: Annotated[
        bool,
        typer.Option(
            "--with-workers",
            help="Also run a gatekeeper worker and the vehicles service in this process. With no Redis given "
            "(--redis-url or $FLEETGATE_REDIS_URL) they run on a private redis-server (or the embedded one), with "
            "a test-mode app whose credentials are printed.",
        ),
    ] = False,
    redirect_uri: Annotated[
        list[str] | None,
        typer.Option("--redirect-uri", help=f"The printed app's redirect URIs [default: {DEFAULT_REDIRECT_URI}]."),
    ] = None,
    redis_url: RedisUrlOption = None,
) -> None:
    """Serve Connect, the token endpoint and the vehicle API over HTTP until interrupted."""
    with reporting_errors(), _redis(redis_url, with_workers=with_workers) as (url, started):
        settings = Settings() if url is None else Settings(redis_url=url)
        settings = settings.model_copy(
            update={
                "http_host": settings.http_host if host is None else host,
                "http_port": settings.http_port if port is None else port,
            }
        )
        local_app = (redirect_uri or [DEFAULT_REDIRECT_URI]) if started else None
        serve_http(settings, with_workers=with_workers, local_app=local_app)


def serve_http(settings: Settings, *, with_workers: bool, local_app: Sequence[str] | None = None) -> None:
    """Serve until Ctrl-C or SIGTERM; with `local_app`, first create a test-mode app with those redirect URIs and
    print its credentials (for a Redis this command started, which nothing else can reach to create one)."""
    with contextlib.suppress(KeyboardInterrupt):
        run_loop(_serve(settings, with_workers=with_workers, local_app=local_app))


@contextlib.contextmanager
def _redis(redis_url: str | None, *, with_workers: bool) -> Iterator[tuple[str | None, bool]]:
    """The Redis URL to use (None: the settings') and whether this command started that Redis."""
    if redis_url is not None or not with_workers or os.environ.get(f"{ENV_PREFIX}REDIS_URL"):
        yield redis_url, False
        return
    with demo_redis() as started:
        typer.echo(f"using {started.description}, at {started.url} until this command stops")
        yield started.url, True


async def _serve(settings: Settings, *, with_workers: bool, local_app: Sequence[str] | None) -> None:
    client = client_for(settings, queue=True)  # many calls at once wait for a connection, never fail for want of one
    try:
        try:
            await client.ping()
        except REDIS_ERRORS as exc:
            raise RedisUnavailableError(f"Redis at {redact(settings.redis_url)}: {exc}") from exc
        sock = bind(settings.http_host, settings.http_port)
        registry = Registry(client, settings.keys)
        app = create_app(HttpContext(settings, client, registry, SimulatorAccounts(registry)))
        url = base_url(sock)
        if local_app is not None:
            await _create_local_app(client, registry, local_app)
        typer.echo(
            f"fleetgate serving on {url}  (apps: SMARTCAR_CONNECT_ORIGIN={url} SMARTCAR_API_ORIGIN={url} "
            f"SMARTCAR_MANAGEMENT_API_ORIGIN={url} SMARTCAR_VEHICLE_API_V3_ORIGIN={url} "
            f"SMARTCAR_AUTH_ORIGIN={url}/oauth/token)"
        )
        typer.echo(f"dashboard: {url}/dashboard (sign in with an app's management token)")
        async with _workers(settings, with_workers), _usage(settings):
            # uvicorn handles SIGTERM (a graceful shutdown), then re-raises it to the handler it found: a no-op
            # one, so that the workers stop cleanly too and the command exits 0 as the other services do.
            previous = signal.signal(signal.SIGTERM, _after_shutdown)
            try:
                await make_server(app).serve(sockets=[sock])
            finally:
                signal.signal(signal.SIGTERM, previous)
    finally:
        await client.aclose()


def _after_shutdown(_signal: int, _frame: object) -> None:
    """SIGTERM, re-raised by uvicorn once it has shut down: nothing more to do."""


async def _create_local_app(client: Client, registry: Registry, redirect_uris: Sequence[str]) -> None:
    created = await AppStore(client, registry.keys).create(LOCAL_APP_NAME, redirect_uris, AppMode.TEST)
    await registry.publish_config(default_app_config(), app_id=created.app.id)
    credentials = {
        "client_id": created.app.id,
        "client_secret": created.client_secret,
        "management_token": created.management_token,
        "redirect_uris": list(redirect_uris),
        "mode": created.app.mode.value,
    }
    typer.echo(f"a test-mode app (its Vehicle Access config: simulator/app.toml): {json.dumps(credentials)}")


@contextlib.asynccontextmanager
async def _usage(settings: Settings) -> AsyncIterator[None]:
    """A usage consumer on its own Redis client, stopped (its batches in hand counted) when the server stops."""
    usage = UsageConsumer(settings, client_for(settings))
    task = asyncio.create_task(usage.run())
    try:
        yield
    finally:
        usage.stop()
        await asyncio.gather(task, return_exceptions=True)
        await usage.redis.aclose()


@contextlib.asynccontextmanager
async def _workers(settings: Settings, with_workers: bool) -> AsyncIterator[None]:
    """A gatekeeper worker, a vehicles service and a webhook worker, each on its own Redis client, stopped when the
    server stops."""
    if not with_workers:
        yield
        return
    gatekeeper = Gatekeeper(settings, client_for(settings))
    vehicles = VehicleService(settings, client_for(settings))
    webhooks = WebhookWorker(settings, client_for(settings))
    tasks = [
        asyncio.create_task(serve_gatekeeper(gatekeeper)),
        asyncio.create_task(serve_vehicles(vehicles)),
        asyncio.create_task(webhooks.run()),
    ]
    typer.echo("with a gatekeeper worker, the vehicles service and the webhook worker")
    try:
        yield
    finally:
        gatekeeper.stop()
        vehicles.stop()
        webhooks.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in (gatekeeper.redis, vehicles.redis, webhooks.redis):
            await client.aclose()
