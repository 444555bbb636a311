"""`fleetgate webhooks run|deliveries`: the delivery worker (services/webhooks/delivery.py) and each webhook's
delivery log. (The definitions' commands, create/list/show/verify/delete, live in fleetgate/webhooks.py, whose
`app` these two join in fleetgate/__init__.py.)"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from prometheus_client import start_http_server

from fleetgate._output import console, print_json, reporting_errors, table
from fleetgate._registry import RedisUrlOption, run, settings_for
from schemas.errors import FleetgateError
from services.errors import NotFoundError
from services.eventloop import run_loop
from services.logs import configure_logging_unless_configured
from services.redis_client import client_for, refuse_eviction
from services.registry import Registry
from services.settings import Settings
from services.streams import stop_on_signals
from services.webhooks.log import last_deliveries
from services.webhooks.store import WebhookStore
from services.webhooks.worker import WebhookWorker

log = logging.getLogger("fleetgate.webhooks")
REFUSED = 2


def run_command(redis_url: RedisUrlOption = None) -> None:
    """Make webhook events and deliver them, until SIGTERM or Ctrl-C.

    Events come from revocations, command changes, the change poll and schedules. On stop, attempts in flight
    finish and the rest stays for the next worker. Run several: each shard is delivered by one of them at a time,
    and a dead one's shards are taken over."""
    with reporting_errors():
        settings = settings_for(redis_url)
    configure_logging_unless_configured(as_json=settings.log_json)
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    raise typer.Exit(run_loop(_serve(settings)))


async def _serve(settings: Settings) -> int:
    redis = client_for(settings)
    worker = WebhookWorker(settings, redis)
    try:
        with stop_on_signals(worker.stopping):
            await refuse_eviction(redis, settings)
            delivery = worker.delivery
            log.info("webhook worker %s delivering %d shard(s)", delivery.holder, len(delivery.shards))
            await worker.run()
    except FleetgateError as exc:  # an evicting Redis: refused in one line, as the other workers do
        log.error("webhook worker not started: %s", exc)
        return REFUSED
    finally:
        await redis.aclose()
    return 0


def deliveries_command(
    webhook_id: Annotated[str, typer.Argument(help="The webhook's id (fleetgate webhooks list).")],
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="How many, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    redis_url: RedisUrlOption = None,
) -> None:
    """The webhook's last deliveries: event, vehicle, status (delivered, dead, skipped), attempts, HTTP status,
    latency and the last error."""

    async def read(registry: Registry) -> list[dict[str, Any]]:
        if await WebhookStore(registry.redis, registry.keys).find(webhook_id) is None:
            raise NotFoundError(f"unknown webhook {webhook_id!r} (fleetgate webhooks list)")
        return await last_deliveries(registry.redis, registry.keys, webhook_id, limit)

    with reporting_errors():
        rows = run(redis_url, read)
    if as_json:
        print_json(rows)
        return
    shown = table(
        f"Deliveries of webhook {webhook_id}",
        "at",
        "event",
        "vehicle",
        "type",
        "status",
        "attempts",
        "HTTP",
        "ms",
        "last error",
    )
    for row in rows:
        at = row.get("at")
        when = datetime.fromtimestamp(at / 1000, UTC).isoformat(timespec="seconds") if isinstance(at, int) else ""
        shown.add_row(
            when,
            str(row.get("event_id", "")),
            str(row.get("vehicle_id", "")),
            str(row.get("event_type", "")),
            str(row.get("status", "")),
            str(row.get("attempts", "")),
            "" if row.get("http_status") is None else str(row["http_status"]),
            "" if row.get("latency_ms") is None else f"{row['latency_ms']:.0f}",
            str(row.get("error") or ""),
        )
    console().print(shown)
    if not rows:
        typer.echo("no deliveries logged yet", err=True)
