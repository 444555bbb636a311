"""Prometheus metrics of the webhook delivery worker (served on `FLEETGATE_METRICS_PORT` when set)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "fleetgate_webhook_deliveries_total",
    "Webhook events finished, by status (delivered, dead, skipped, unchanged)",
    ["status"],
)
FAILURES = Counter(
    "fleetgate_webhook_failures_total", "Failed delivery attempts: non-2xx, timeout, network error, failed build"
)
RETRIES = Counter("fleetgate_webhook_retries_total", "Attempts scheduled again after a failure")
DEAD_LETTERS = Counter("fleetgate_webhook_dead_letters_total", "Events given up on (dead-letter records written)")
LAG = Gauge("fleetgate_webhook_lag_seconds", "Age of the oldest event this worker holds undelivered")
LATENCY = Histogram(
    "fleetgate_webhook_post_seconds",
    "Time of one POST to a webhook endpoint, answered or not",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0),
)
