"""`fleetgate serve`: the HTTP faces (Connect, tokens, the vehicle API) on uvicorn.

The composition root of the HTTP app: it hands the simulator's accounts (simulator/accounts.py) to services.http.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import typer

from fleetgate._output import reporting_errors
from fleetgate._registry import RedisUrlOption
from services.errors import RedisUnavailableError
from services.http import HttpContext, create_app
from services.http.server import base_url, bind, make_server
from services.redis_client import REDIS_ERRORS, client_for, redact
from services.registry import Registry
from services.settings import Settings
from simulator.accounts import SimulatorAccounts


def serve_command(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: $FLEETGATE_HTTP_HOST, else 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="Port to listen on (default: $FLEETGATE_HTTP_PORT, else 8000).", min=0, max=65535),
    ] = None,
    redis_url: RedisUrlOption = None,
) -> None:
    """Serve Connect, the token endpoint and the vehicle API over HTTP until interrupted."""
    with reporting_errors():
        settings = Settings() if redis_url is None else Settings(redis_url=redis_url)
        settings = settings.model_copy(
            update={
                "http_host": settings.http_host if host is None else host,
                "http_port": settings.http_port if port is None else port,
            }
        )
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    client = client_for(settings)
    try:
        try:
            await client.ping()
        except REDIS_ERRORS as exc:
            raise RedisUnavailableError(f"Redis at {redact(settings.redis_url)}: {exc}") from exc
        sock = bind(settings.http_host, settings.http_port)
        registry = Registry(client, settings.keys)
        app = create_app(HttpContext(settings, client, registry, SimulatorAccounts(registry)))
        url = base_url(sock)
        typer.echo(
            f"fleetgate serving on {url}  (apps: SMARTCAR_CONNECT_ORIGIN={url} SMARTCAR_API_ORIGIN={url} "
            f"SMARTCAR_MANAGEMENT_API_ORIGIN={url} SMARTCAR_VEHICLE_API_V3_ORIGIN={url} "
            f"SMARTCAR_AUTH_ORIGIN={url}/oauth/token)"
        )
        await make_server(app).serve(sockets=[sock])
    finally:
        await client.aclose()
