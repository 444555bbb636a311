"""All of fleetgate's settings in one typed object, read from `FLEETGATE_*` environment variables."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.keyspace import Keys, parse_shards
from services.redis_client import SOCKET_TIMEOUT_S
from services.registry.tokens import TokenLifetimes

ENV_PREFIX = "FLEETGATE_"
REDIS_SCHEMES = ("redis", "rediss", "unix")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    redis_url: str = "redis://127.0.0.1:6379/0"
    """Redis to use; may carry a user and password (`redis://user:pass@host:port/db`) or TLS (`rediss://`)."""
    key_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")] = "fleetgate"
    """Every key and stream fleetgate uses starts with this and a colon."""
    allow_eviction: bool = False
    """Run on a Redis whose `maxmemory-policy` evicts keys. Off: every process refuses to start on one, because an
    evicted dedupe record decides a request twice and an evicted connection turns valid requests UNAUTHORIZED."""
    socket_timeout_s: Annotated[float, Field(gt=0, le=300)] = SOCKET_TIMEOUT_S
    """How long a command waits for its reply before its connection counts as dead (a network that silently drops
    packets); a blocking read waits its block time on top. Connections also use TCP keepalive."""
    redis_cluster: bool = False
    """`redis_url` names a node of a Redis Cluster: use a cluster client (needs `shards` of 2 or more)."""
    shards: Annotated[int, Field(ge=1, le=1024)] = 1
    """Split the streams and connections into this many shards, each under its own hash tag (docs/contract.md).
    1 keeps the unsharded key names; every process of a deployment must agree on it."""
    worker_shards: str = ""
    """The shards a gatekeeper worker consumes, as `0-2` or `0,3,5` (empty: every shard)."""

    # --- the gatekeeper
    group: Annotated[str, Field(min_length=1)] = "gatekeeper"
    """The consumer group on `{prefix}:requests` that the gatekeeper workers share."""
    batch_size: Annotated[int, Field(ge=1, le=5000)] = 500
    """Entries read per XREADGROUP (max_records): one server-side script decides, publishes and acks them."""
    batches_in_flight: Annotated[int, Field(ge=1, le=8)] = 3
    """Batches one worker has in hand at once: one is decided in Python while another's script runs in Redis."""
    block_ms: Annotated[int, Field(ge=1)] = 1000
    """How long one read waits for new entries."""
    min_idle_ms: Annotated[int, Field(ge=1)] = 30_000
    """A pending entry idle this long is reclaimed by another worker (its worker is presumed dead)."""
    reclaim_interval_ms: Annotated[int, Field(ge=10)] = 5_000
    """How often each worker looks for entries to reclaim."""
    max_deliveries: Annotated[int, Field(ge=1)] = 5
    """An entry delivered more often than this goes to `{prefix}:deadletter` instead."""
    dedupe_window_s: Annotated[int, Field(ge=1)] = 86_400
    """How long a request_id is remembered, so that it gets exactly one decision."""
    max_payload_bytes: Annotated[int, Field(ge=64)] = 65_536
    """Larger `data` fields are REJECTED unread."""
    decisions_maxlen: Annotated[int, Field(ge=0)] = 1_000_000
    """Retention of `{prefix}:decisions`: about this many newest entries are kept, and older ones dropped once every
    consumer group on the stream has acknowledged them (0: by age only, or unbounded)."""
    decisions_hard_cap: Annotated[int, Field(ge=0)] = 5_000_000
    """The memory safety valve of `{prefix}:decisions` (0: none): past this many entries the oldest are dropped even
    if a consumer group has not read them, counted per group (`fleetgate_trimmed_unread_total`) and logged."""
    deadletter_maxlen: Annotated[int, Field(ge=0)] = 100_000
    """Approximate retention of `{prefix}:deadletter` (0: unbounded)."""
    decisions_max_age_s: Annotated[int, Field(ge=0)] = 0
    """Also drop decisions older than this once every consumer group has acknowledged them (0: by length only)."""
    deadletter_max_age_s: Annotated[int, Field(ge=0)] = 0
    """Also drop dead letters older than this, at each trim (0: by length only)."""
    trim_interval_ms: Annotated[int, Field(ge=100)] = 5_000
    """How often the streams are trimmed (requests below what every group has acknowledged, decisions by their
    retention) and the groups' lag and pending exported."""
    cache_ttl_s: Annotated[float, Field(gt=0)] = 60.0
    """Cached vehicles and connections are re-read after this long even without an event (a safety net)."""
    heartbeat_ttl_s: Annotated[int, Field(ge=1)] = 15
    """A worker's heartbeat key expires after this long; `gatekeeper check` fails once none is fresh."""
    # --- the vehicles service (simulator/vehicles/service.py)
    vehicles_group: Annotated[str, Field(min_length=1)] = "vehicles"
    """The consumer group on `{prefix}:decisions` that the vehicles services share."""
    responses_maxlen: Annotated[int, Field(ge=0)] = 1_000_000
    """Retention of `{prefix}:responses`, as FLEETGATE_DECISIONS_MAXLEN is of the decisions."""
    responses_hard_cap: Annotated[int, Field(ge=0)] = 5_000_000
    """The memory safety valve of `{prefix}:responses`, as FLEETGATE_DECISIONS_HARD_CAP is of the decisions."""
    sim_speed: Annotated[float, Field(gt=0, le=100_000)] = 1.0
    """How fast simulated vehicles live: 1 is real time, 60 a simulated minute per second. Set once per
    deployment: the first vehicles service to start records the clock in Redis, and every process follows it."""
    sim_seed: int = 0
    """The seed of the simulated vehicles' values and lives: the same seed gives the same fleet state."""
    sim_start: AwareDatetime | None = None
    """The simulated time the vehicles' clock starts at when the first vehicles service records it (default: now).
    With FLEETGATE_SIM_SEED it makes runs reproducible: the same vehicles in the same state, whatever the hour."""
    sim_refuse_asleep: bool = False
    """Reads of an asleep simulated vehicle are refused (VEHICLE_STATE/ASLEEP, with the stale value) instead of
    answered with the value it last reported. Parked vehicles sleep most of the day: on, most reads fail."""
    # --- the usage aggregate (services/insights/usage.py), what `fleetgate access advise` reads
    usage_group: Annotated[str, Field(min_length=1)] = "usage"
    """The consumer group on `{prefix}:decisions` that counts each app's decisions in hourly buckets."""
    usage_retention_days: Annotated[int, Field(ge=1, le=3660)] = 35
    """How long an hourly usage bucket is kept (fleetgate's choice: five weeks covers a monthly review)."""
    # --- webhooks (services/webhooks/, docs/webhooks.md)
    webhook_group: Annotated[str, Field(min_length=1)] = "webhooks"
    """The consumer group on `{prefix}:webhook-events` (and on the connection-events and responses streams, for
    the triggers) of the webhook worker."""
    webhook_timeout_s: Annotated[float, Field(gt=0, le=120)] = 15.0
    """How long one POST to a webhook endpoint may take, connecting included (Smartcar: 15 s)."""
    webhook_max_response_bytes: Annotated[int, Field(ge=256, le=10 * 1024 * 1024)] = 65_536
    """How much of an endpoint's answer is read; the rest is not waited for."""
    webhook_concurrency: Annotated[int, Field(ge=1, le=256)] = 8
    """Deliveries in flight at once to one webhook (each to a different vehicle: one vehicle's are in order)."""
    webhook_retry_base_s: Annotated[float, Field(gt=0, le=3600)] = 5.0
    """The first retry's delay bound; each next one doubles it, with full jitter."""
    webhook_retry_max_s: Annotated[float, Field(gt=0, le=86_400)] = 300.0
    """The longest delay between two attempts."""
    webhook_retry_for_s: Annotated[float, Field(ge=0, le=7 * 86_400)] = 3600.0
    """How long an event is retried from its first attempt before it is dead-lettered."""
    webhook_allowed_hosts: str = ""
    """Comma-separated host names or IP addresses that callback URLs may name; empty: any. Set it in production
    to the hosts you trust: otherwise an app can make fleetgate POST to anything fleetgate can reach."""
    webhook_poll_s: Annotated[float, Field(gt=0, le=86_400)] = 30.0
    """How often subscribed vehicles are checked for changed signals (a command's change is noticed at once)."""
    webhook_lease_s: Annotated[float, Field(ge=1, le=600)] = 10.0
    """How long a dead delivery worker's shard stays held before another worker takes it over."""
    webhook_max_buffered: Annotated[int, Field(ge=10, le=1_000_000)] = 10_000
    """Events a delivery worker holds in memory (waiting or retrying); past it, it reads no more until some end."""
    webhook_log_maxlen: Annotated[int, Field(ge=10)] = 1000
    """Entries kept in each webhook's delivery log."""

    # --- OAuth (services/registry/tokens.py)
    code_ttl_s: Annotated[int, Field(ge=1)] = 600
    """How long an authorization code from Connect can be exchanged (Smartcar: 10 minutes)."""
    access_token_ttl_s: Annotated[int, Field(ge=1)] = 7200
    """How long an access token is valid (Smartcar: 2 hours; `expires_in` says so)."""
    refresh_token_ttl_s: Annotated[int, Field(ge=1)] = 60 * 86_400
    """How long a refresh token is valid (Smartcar: 60 days)."""
    refresh_grace_s: Annotated[int, Field(ge=0)] = 60
    """How long a refresh token stays valid after it was used (Smartcar: 1 minute)."""
    app_token_ttl_s: Annotated[int, Field(ge=1)] = 3600
    """How long an application token (client credentials, API v3) is valid (Smartcar: 1 hour)."""
    api_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    """How long a vehicle API call waits for its decision and the vehicle's response before it answers
    UPSTREAM/NO_RESPONSE (502)."""
    api_cache_ttl_s: Annotated[float, Field(ge=0, le=60)] = 1.0
    """How long an API process remembers an access token's grant and a user's connection to a vehicle (0: not at
    all). Another process's revocation reaches this one's token lookups within it; the gatekeeper denies a revoked
    connection's requests at once whatever is remembered (services/http/lookups.py)."""
    login_rate_limit: Annotated[int, Field(ge=1)] = 30
    """Connect sign-ins a minute per client and IP; more get 429 (password guessing)."""
    connect_flow_ttl_s: Annotated[int, Field(ge=1)] = 1800
    """How long a Connect flow (authorize to grant) may take; an expired one shows a page asking to start again."""
    token_rate_limit: Annotated[int, Field(ge=1)] = 600
    """Token endpoint calls a minute per client and IP; more get 429 (code and secret guessing)."""
    # --- the HTTP faces (`fleetgate serve`)
    http_host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    """The address `fleetgate serve` listens on (0.0.0.0: every interface)."""
    http_port: Annotated[int, Field(ge=0, le=65535)] = 8000
    """The port `fleetgate serve` listens on (0: any free one)."""
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 0
    """Serve Prometheus metrics on this port (0: no metrics server)."""
    log_json: bool = False
    """Log one JSON object per line instead of text."""
    dashboard_secret: SecretStr | None = Field(default=None, min_length=32)
    """The key that signs dashboard sessions (at least 32 characters). Unset: a random one is made once and kept in
    Redis (`{prefix}:dashboard:secret`), so every `fleetgate serve` of the stack and its restarts share it."""
    dashboard_session_ttl_s: Annotated[int, Field(ge=60, le=30 * 86_400)] = 8 * 3600
    """How long a dashboard sign-in lasts."""

    @property
    def webhook_hosts(self) -> tuple[str, ...]:
        """`webhook_allowed_hosts` as a list (empty: any host)."""
        return tuple(h.strip() for h in self.webhook_allowed_hosts.split(",") if h.strip())

    @field_validator("redis_url")
    @classmethod
    def _check_scheme(cls, url: str) -> str:
        scheme = url.partition("://")[0] if "://" in url else ""
        if scheme not in REDIS_SCHEMES:
            # The URL itself is not repeated: it may carry a password.
            raise ValueError(
                "not a Redis URL: it must start with redis://, rediss:// (TLS) or unix:// "
                "(for example redis://localhost:6379/0)"
            )
        return url

    @model_validator(mode="after")
    def _check_shards(self) -> Settings:
        if self.redis_cluster and self.shards == 1:
            raise ValueError(
                "FLEETGATE_REDIS_CLUSTER needs FLEETGATE_SHARDS of 2 or more: the unsharded key names span "
                "cluster slots (about 2 shards per master spreads the load)"
            )
        parse_shards(self.worker_shards or "0", self.shards)  # a clear error now, not when a worker starts
        if self.responses_hard_cap and self.responses_hard_cap < self.responses_maxlen:
            raise ValueError(
                f"FLEETGATE_RESPONSES_HARD_CAP ({self.responses_hard_cap}) is below FLEETGATE_RESPONSES_MAXLEN "
                f"({self.responses_maxlen}): the cap must leave room for the retention (0: no cap)"
            )
        if self.decisions_hard_cap and self.decisions_hard_cap < self.decisions_maxlen:
            raise ValueError(
                f"FLEETGATE_DECISIONS_HARD_CAP ({self.decisions_hard_cap}) is below FLEETGATE_DECISIONS_MAXLEN "
                f"({self.decisions_maxlen}): the cap must leave room for the retention (0: no cap)"
            )
        return self

    @property
    def worker_shard_numbers(self) -> list[int]:
        return parse_shards(self.worker_shards, self.shards) if self.worker_shards else list(range(self.shards))

    @property
    def token_lifetimes(self) -> TokenLifetimes:
        return TokenLifetimes(
            code_ttl_s=self.code_ttl_s,
            access_token_ttl_s=self.access_token_ttl_s,
            refresh_token_ttl_s=self.refresh_token_ttl_s,
            refresh_grace_s=self.refresh_grace_s,
            app_token_ttl_s=self.app_token_ttl_s,
        )

    @property
    def keys(self) -> Keys:
        return Keys(self.key_prefix, self.shards)

    def environment(self) -> dict[str, str]:
        """The environment of a child process with these settings: this one's, each setting as its `FLEETGATE_*`
        variable (every one, so none is inherited from elsewhere by accident)."""
        inherited = {name: value for name, value in os.environ.items() if not name.startswith(ENV_PREFIX)}
        return inherited | {
            f"{ENV_PREFIX}{name.upper()}": _as_variable(value)
            for name, value in self.model_dump().items()
            if value is not None  # unset: the child's default too
        }


def _as_variable(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, SecretStr):
        return value.get_secret_value()  # a child process needs the secret itself, never the mask
    return str(value)
