"""Running the vehicles service as a process (`fleetgate vehicles serve`, the compose stack's `vehicles`)."""

from __future__ import annotations

import gc
import logging

from prometheus_client import start_http_server

from schemas.errors import FleetgateError
from services.eventloop import run_loop
from services.logs import configure_logging
from services.redis_client import client_for
from services.settings import Settings
from services.streams import stop_on_signals
from simulator.vehicles.service import VehicleService, serve

log = logging.getLogger("fleetgate.vehicles")
REFUSED = 2


def run_service(settings: Settings) -> int:
    """Answer decisions until SIGTERM or Ctrl-C; 0 when stopped, 2 when it refused to run (one line logged)."""
    configure_logging(as_json=settings.log_json)
    gc.freeze()  # as the gatekeeper: fewer collections over the long-lived caches
    gc.set_threshold(50_000, 20, 10)
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    return run_loop(_run(settings))


async def _run(settings: Settings) -> int:
    redis = client_for(settings)
    service = VehicleService(settings, redis)
    try:
        with stop_on_signals(service.stopping):
            await serve(service)
    except FleetgateError as exc:  # an evicting Redis: refused in one line, as the gatekeeper does
        log.error("vehicles service not started: %s", exc)
        return REFUSED
    finally:
        await redis.aclose()
    return 0
