"""Running the app on uvicorn: on a socket bound first, so that a taken port is a clear error, not a log line."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

import uvicorn
from fastapi import FastAPI

from services.errors import ServiceError


class PortUnavailableError(ServiceError):
    """The address and port to listen on cannot be bound (taken, or not this machine's)."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one); PortUnavailableError when it cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it (Linux): without it uvicorn's response, written as headers then body, waits
    # out the client's delayed ACK, ~40 ms a request (measured: 45-57 ms a call, 3-6 ms with it; bench/oauth.py).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise PortUnavailableError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, which ends the app's event streams (the dashboard's live feed) as it starts shutting
    down: uvicorn waits for every response to finish before the app's own shutdown, and a stream never does."""

    def __init__(self, config: uvicorn.Config, end_streams: Callable[[], Awaitable[None]]) -> None:
        super().__init__(config)
        self.end_streams = end_streams

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.end_streams()
        await super().shutdown(sockets)


def make_server(app: FastAPI, *, log_level: str = "warning") -> uvicorn.Server:
    """A uvicorn server for `app` (built by `create_app`); run it with `await server.serve(sockets=[bind(host,
    port)])`."""
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on", server_header=False)
    return _Server(config, app.state.context.live.stop)


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
