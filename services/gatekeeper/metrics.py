"""Prometheus metrics of the gatekeeper (served on `FLEETGATE_METRICS_PORT` when set)."""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import Counter, Gauge, Histogram
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

DECISIONS = Counter("fleetgate_decisions_total", "Decisions published, by outcome", ["outcome"])
DUPLICATES = Counter(
    "fleetgate_duplicates_total", "Entries acknowledged without a decision: request id already decided"
)
BATCH_SIZE = Histogram(
    "fleetgate_batch_size", "Entries per batch", buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
)
BATCH_SECONDS = Histogram(
    "fleetgate_batch_seconds",
    "Time to decide, publish and acknowledge one batch",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
REDELIVERIES = Counter("fleetgate_redeliveries_total", "Entries reclaimed from an idle or dead consumer")
DEAD_LETTERS = Counter("fleetgate_dead_letters_total", "Entries sent to the dead-letter stream")
CACHE_HITS = Counter("fleetgate_cache_hits_total", "Connection and vehicle lookups served from the cache")
CACHE_MISSES = Counter("fleetgate_cache_misses_total", "Connection and vehicle lookups read from the registry")
BATCH_ERRORS = Counter(
    "fleetgate_batch_errors_total",
    "Batches whose read or commit failed on a Redis error, by reason (OOM, NOGROUP, ..., connection, timeout)",
    ["reason"],
)
DECIDING = Gauge(
    "fleetgate_deciding", "1 while the worker decides, 0 while Redis failures keep it from deciding (it retries)"
)
DECIDING.set(1)
PENDING = Gauge(
    "fleetgate_group_pending",
    "Entries delivered but not acknowledged, per stream (requests, decisions; summed over the worker's shards) "
    "and group",
    ["stream", "group"],
)
LAG = Gauge(
    "fleetgate_group_lag",
    "Entries not yet delivered to the group, per stream (summed over the worker's shards) and group",
    ["stream", "group"],
)
TRIMMED_UNREAD = Counter(
    "fleetgate_trimmed_unread_total",
    "Entries the hard cap trimmed from an output stream before a consumer group read them (lost to it)",
    ["stream", "group"],
)


def error_reason(exc: Exception) -> str:
    """A short, bounded label for a Redis error: an error reply's code (`OOM`), else the kind of failure."""
    if isinstance(exc, OutOfMemoryError):  # redis-py drops the OOM code from the message of its own class
        return "OOM"
    if type(exc) is ResponseError:
        code = str(exc).split(" ", 1)[0]
        return code if code.isupper() and len(code) <= 16 else "error"
    if isinstance(exc, ResponseError):
        return type(exc).__name__
    if isinstance(exc, RedisTimeoutError):
        return "timeout"
    return "connection" if isinstance(exc, RedisConnectionError) else type(exc).__name__


def observe_batch(
    entries: int, published: Tally[str], duplicates: int, *, seconds: float, cache_hits: int, cache_misses: int
) -> None:
    """One batch: its size and time, the decisions it published by outcome, and its duplicates."""
    BATCH_SIZE.observe(entries)
    BATCH_SECONDS.observe(seconds)
    for outcome, count in published.items():
        DECISIONS.labels(outcome).inc(count)
    DUPLICATES.inc(duplicates)
    CACHE_HITS.inc(cache_hits)
    CACHE_MISSES.inc(cache_misses)
