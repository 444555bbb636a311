"""The gatekeeper as a FastStream application: `faststream run --factory services.gatekeeper.app:create_app`.

FastStream hosts the worker's lifecycle (startup, signals, graceful shutdown); the AsyncAPI document of the streams
is services/asyncapi.py's. The hot path itself is the worker's own batch loop (worker.py), not a FastStream subscriber.
FastStream's per-message subscriber costs at least one command per message (about 1k msg/s in
`python -m bench.gatekeeper`, 0.01x this loop). Its batch subscriber (`StreamSub(..., batch=True,
max_records=500)`: one XREADGROUP, one pipeline of XADDs and one XACK per batch, the round trips of this loop)
drained about 21k msg/s against 70k for this loop in the same run (0.30x; a plain redis-py loop made 0.47x): the
difference is Python CPU per entry, since FastStream parses each batch twice and validates it before a handler
sees it, while this loop hands hiredis's raw replies to one decoder per entry.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import dataclass

from faststream import FastStream
from faststream.redis import RedisBroker
from prometheus_client import start_http_server

from schemas.errors import FleetgateError
from services.gatekeeper.connections import connections_needed
from services.gatekeeper.worker import Gatekeeper, serve
from services.logs import configure_logging
from services.redis_client import client_for, first_node_url, redact
from services.settings import Settings

log = logging.getLogger("fleetgate.gatekeeper")
USAGE_ERROR = 2


@dataclass
class WorkerStatus:
    """How the worker ended: 0 when stopped by a signal, 2 when it refused to run (one line logged, no traceback)."""

    exit_code: int = 0


def create_app(settings: Settings | None = None, status: WorkerStatus | None = None) -> FastStream:
    settings = settings or Settings()
    status = status or WorkerStatus()
    broker = RedisBroker(first_node_url(settings.redis_url))  # it takes one host; it never sends a command
    running: dict[str, object] = {}

    async def start() -> None:
        configure_logging(as_json=settings.log_json)
        # The worker allocates a few objects per message and holds a large registry cache: at the default
        # thresholds the collector runs every 700 allocations and keeps rescanning that cache, which made
        # reading a batch about 3x dearer (bench/gatekeeper.py). Collect young objects less often instead.
        gc.freeze()
        gc.set_threshold(50_000, 20, 10)
        if settings.metrics_port:
            start_http_server(settings.metrics_port)
        # A pool of what the worker may hold at once (connections.py), not redis-py's 100 whatever the shards.
        redis = client_for(settings, max_connections=connections_needed(settings).per_server)
        gatekeeper = Gatekeeper(settings, redis)
        running["gatekeeper"], running["redis"] = gatekeeper, redis
        task = asyncio.create_task(serve(gatekeeper))
        task.add_done_callback(exit_if_failed)
        running["task"] = task
        log.info("gatekeeper starting on %s", redact(settings.redis_url))

    def exit_if_failed(task: asyncio.Task[None]) -> None:
        # A worker that died must not leave a process that looks alive: stop the app, so it exits.
        if task.cancelled() or (failure := task.exception()) is None:
            return
        if isinstance(failure, FleetgateError):  # a refusal (an evicting Redis, ...): its message says it all
            log.error("gatekeeper not started: %s", failure)
            status.exit_code = USAGE_ERROR
        else:
            log.error("gatekeeper worker failed", exc_info=failure)
            status.exit_code = 1
        application.exit()

    async def stop() -> None:
        gatekeeper = running.get("gatekeeper")
        task = running.get("task")
        if isinstance(gatekeeper, Gatekeeper) and isinstance(task, asyncio.Task):
            gatekeeper.stop()
            await asyncio.gather(task, return_exceptions=True)  # its failure, if any, was reported above
            await gatekeeper.redis.aclose()

    application = FastStream(broker, after_startup=[start], on_shutdown=[stop])
    return application
