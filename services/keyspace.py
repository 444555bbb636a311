"""fleetgate's keyspace: every Redis key and stream name, and how they split into shards. One place for all.

Every process reads and writes these names (the registry, the gatekeeper, the consumers, the simulator), so this
module is a contract inside the project; the records stored under the registry's keys are encoded by
`services/registry/records.py`. With the key prefix `P` (setting `FLEETGATE_KEY_PREFIX`, default `fleetgate`):

| key                          | type   | holds                                                            |
|------------------------------|--------|------------------------------------------------------------------|
| `P:vehicle:{vehicle_id}`     | string | a vehicle, JSON (registry/records.py)                         |
| `P:vins`                     | hash   | VIN -> vehicle id, and the field `complete` (registry/vins.py)   |
| `P:conn:{connection_id}`     | string | a connection, compact text (registry/records.py)              |
| `P:access:config:{version}`  | string | a published Vehicle Access config, JSON; never changed once set  |
| `P:access:current`           | string | the current config version (an integer)                          |
| `P:access:version`           | string | the last version handed out (INCR)                               |
| `P:access:published`         | hash   | version -> when it was published (epoch ms)                      |
| `P:access:filters`           | string | the Connection Filters, JSON                                     |
|                              |        | (the `P:access:*` keys are the default app's; others have theirs) |
| `P:app:{app_id}:access:...`  |        | another app's `config:{v}`, `current`, `version`, `published`,   |
|                              |        | `filters`                                                        |
| `P:app:{app_id}`             | string | an application, JSON, with its secrets' hashes (registry/apps.py) |
| `P:apps`                     | zset   | app ids, scored by creation time (ms)                            |
| `P:amt:{sha256}`             | string | the app id a management token belongs to                         |
| `P:app:{app_id}:connections` | zset   | the app's active connection ids, scored by creation time (ms)    |
| `P:app:{app_id}:revoked`     | zset   | the app's revoked connection ids, scored by creation time (ms)   |
| `P:app:{app_id}:user:{user_id}` | hash | the user's active connections with the app: vehicle id -> connection id |
| `P:token:{kind}:{sha256}`    | string | a code's or token's grant, JSON; expires (registry/tokens.py)    |
| `P:app:{app_id}:user:{user_id}:tokens` | set | the keys of the user's tokens with the app             |
| `P:ratelimit:{endpoint}:{client}|{ip}:{window}` | string | calls in one rate-limit window; expires       |
| `P:connection-events`        | stream | `connection.*` events, field `data` (the wire contract)          |
| `P:requests`, `P:decisions`, `P:deadletter` | streams | the gatekeeper's (docs/contract.md)                  |
| `P:decided:{bucket}`         | set    | request ids decided in one bucket of the dedupe window (dedupe.py) |
| `P:gatekeeper:heartbeat:{consumer}` | string | a live worker's last beat; expires                        |
| `P:gatekeeper:failures`      | hash   | requests entry id -> the last error its processing raised        |
| `P:responses`                | stream | the vehicles service's answers to ALLOWED requests (contract)    |
| `P:vehicle-state:{vehicle_id}` | hash | a simulated vehicle's state (`s`) and its version (`n`)          |
| `P:vehicles:dedupe:{request_id}` | string | the decision entry answered; expires after the dedupe window |
| `P:vehicles:heartbeat:{consumer}` | string | a live vehicles service's last beat; expires               |
| `P:vehicles:clock`           | string | the simulated vehicles' clock: speed and epochs, JSON            |
| `P:owner:{email}`            | string | a simulated fleet owner's account: `{user_id, vehicle_ids}`, JSON |
| `P:connect:flow:{flow_id}`   | string | one Connect flow in progress, JSON (services/http/connect/flow.py); expires |
| `P:connect:flow:{flow_id}:nonce` | string | the grant form's one-time nonce of that flow; expires       |
| `P:dashboard:secret`         | string | the dashboard's session-signing secret, made once (SET NX) when  |
|                              |        | FLEETGATE_DASHBOARD_SECRET is not set (services/http/dashboard/) |
| `P:usage:{app_id}:{hour}`    | hash   | an app's decision counts in one epoch hour (insights/usage.py); expires |
| `P:app:{app_id}:webhook:{id}` | string | a webhook definition, JSON (schemas/webhooks.py, docs/webhooks.md) |
| `P:app:{app_id}:webhooks`    | set    | the app's webhook ids                                            |
| `P:app:{app_id}:webhook-key` | string | the app's webhook signing key (its management token), kept only  |
|                              |        | while the app has webhooks                                       |
| `P:webhook:{id}`             | string | the app id a webhook belongs to                                  |
| `P:webhook:{id}:subscribers` | hash   | vehicle id -> the connection id it was subscribed with           |
| `P:webhook:{id}:last:{vehicle_id}` | hash | signal code -> the value last delivered to the webhook for the vehicle |
| `P:webhook:{id}:deliveries`  | stream | the webhook's delivery log, capped (services/webhooks/log.py)    |
| `P:webhook:{id}:verify`      | string | the last VERIFY's outcome: verified, reason, when, JSON           |
| `P:vehicle-webhooks:{vehicle_id}` | hash | webhook id -> the connection id a vehicle is subscribed with   |
| `P:webhook-events`           | stream | events to deliver (internal; group `webhooks`)                   |
| `P:webhooks:deadletter`      | stream | events given up on, with the reason and attempts                 |
| `P:webhooks:lease:{shard}`   | string | the delivery worker that holds a shard's events; expires         |
| `P:webhooks:triggers-lease`  | string | the process that runs the schedule and change polls; expires     |
| `P:webhooks:due`             | zset   | `poll` -> the next change poll, webhook id -> its next scheduled |
|                              |        | delivery (epoch ms; services/webhooks/schedule.py)               |

Shards, for Redis Cluster (setting `FLEETGATE_SHARDS`): one partition of the 16384 cluster slots into `S` ranges,
used for everything. A slot belongs to shard `slot * S // 16384`; so an id (a vehicle's, a connection's) belongs to
the shard of its own slot (what `CLUSTER KEYSLOT id` answers, and every cluster client computes), and any producer
in any language routes the same way. Each shard's keys share one hash tag, `s{i}.{k}` with the smallest `k` whose
slot belongs to shard `i` by that same rule: a cluster whose slots are split evenly over its masters (as
`redis-cli --cluster create` splits them) gets the shards spread evenly too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from redis.crc import key_slot

from schemas.application import DEFAULT_APP_ID

SLOTS = 16384


def shard_of_slot(slot: int, shards: int) -> int:
    """The shard a cluster slot belongs to: the one rule of the partition."""
    return slot * shards // SLOTS


def shard_of(identifier: str, shards: int) -> int:
    """The shard an id belongs to: its cluster slot's. Stable: it depends on nothing but the id and S."""
    return shard_of_slot(key_slot(identifier.encode()), shards)


def shard_slots(shard: int, shards: int) -> range:
    """The slots of shard `shard` of `shards`: those `shard_of_slot` assigns to it (`-(-a // b)` rounds up)."""
    return range(-(-shard * SLOTS // shards), -(-(shard + 1) * SLOTS // shards))


@cache
def shard_tag(shard: int, shards: int) -> str:
    """The hash tag (without braces) shared by every key of shard `shard` of `shards`: the first `s{shard}.{k}`
    whose slot is the shard's."""
    if not 0 <= shard < shards <= SLOTS:
        raise ValueError(f"shard {shard} of {shards}: need 0 <= shard < shards <= {SLOTS}")
    k = 0
    while shard_of(f"s{shard}.{k}", shards) != shard:
        k += 1  # CRC16 spreads consecutive suffixes: about `shards` tries
    return f"s{shard}.{k}"


def parse_shards(text: str, shards: int) -> list[int]:
    """Shard numbers from `0,2,5` or `0-3` (ranges inclusive); every one must be below `shards`."""
    chosen: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        first, dash, last = part.partition("-")
        try:
            numbers = range(int(first), int(last) + 1) if dash else range(int(first), int(first) + 1)
        except ValueError:
            raise ValueError(f"{part!r} is not a shard number or a range like 0-3") from None
        if not numbers or numbers[0] < 0 or numbers[-1] >= shards:
            raise ValueError(f"{part!r}: shards are numbered 0 to {shards - 1}")
        chosen.update(numbers)
    return sorted(chosen)


@dataclass(frozen=True, slots=True)
class ShardKeys:
    """The keys of one shard: its streams, and the prefixes of its dedupe keys, all under one hash tag."""

    index: int
    requests: str
    decisions: str
    deadletter: str
    decided_prefix: str
    """`decided(bucket)`: the request ids decided in one bucket of the dedupe window (services/dedupe.py)."""
    connection_events: str
    """The `connection.*` events of the connections of this shard."""
    responses: str
    """The vehicles service's answers to this shard's ALLOWED decisions."""
    vehicle_state_prefix: str
    """`vehicle_state_prefix + vehicle_id`: the state of a simulated vehicle of this shard (its requests, decisions
    and state share the shard's hash tag, so one script writes a response with the state change it reports)."""
    response_dedupe_prefix: str
    """`response_dedupe_prefix + request_id` remembers an answered request id for the dedupe window."""
    failures: str
    """A hash: requests-stream entry id -> the last error its processing raised, until it is decided or
    dead-lettered (so the worker that dead-letters it names the real error, whichever worker saw it)."""
    unreadable_prefix: str
    """The request id of an entry with no readable id is this and its entry id: `unreadable:` unsharded,
    `unreadable:<tag>:` on a shard of several (entry ids repeat across the shards' streams)."""
    webhook_events: str
    """Events to deliver to webhooks about this shard's vehicles (services/webhooks/, docs/webhooks.md)."""
    usage_prefix: str
    """`usage_prefix + app_id + ":" + hour`: the usage counts of an app's decisions on this shard in one hour (the
    epoch hour of their entry ids), under the shard's hash tag so that one script counts a batch and acknowledges it."""

    def unreadable_id(self, entry_id: str) -> str:
        return f"{self.unreadable_prefix}{entry_id}"

    def decided(self, bucket: int) -> str:
        return f"{self.decided_prefix}{bucket}"

    def usage(self, app_id: str, hour: int) -> str:
        """The usage bucket of an app's decisions of this shard in epoch hour `hour`."""
        return f"{self.usage_prefix}{app_id}:{hour}"


@dataclass(frozen=True, slots=True)
class AccessKeys:
    """One application's Vehicle Access keys: its config versions, the current one, the counter, when each version
    was published, its filters."""

    config_prefix: str
    current: str
    version: str
    published: str
    filters: str

    def config(self, version: int) -> str:
        return f"{self.config_prefix}{version}"


@dataclass(frozen=True, slots=True)
class Keys:
    """Every key name fleetgate uses, under one prefix, for `shards` shards (see the module's text).

    With one shard the names are the unsharded ones of the table above. With more, each shard's streams, dedupe
    keys and connections carry the shard's hash tag (`P:{s3.3}:requests`, `P:{s3.3}:conn:{connection_id}`) and
    the Vehicle Access keys the tag `{access}`, so that every script's keys share a slot on a Redis Cluster.
    Vehicles keep their own names: each is read and written alone, and spreads over the cluster by its id. The VIN
    index is one untagged hash, like `P:apps`: every command (or script) on it names no other key.
    """

    prefix: str = "fleetgate"
    shards: int = 1
    _shard_keys: tuple[ShardKeys, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.shards < 1:
            raise ValueError(f"shards must be at least 1, not {self.shards}")
        object.__setattr__(self, "_shard_keys", tuple(self._build_shard(i) for i in range(self.shards)))

    def _build_shard(self, index: int) -> ShardKeys:
        base = self._tagged(index)
        return ShardKeys(
            index=index,
            requests=f"{base}requests",
            decisions=f"{base}decisions",
            deadletter=f"{base}deadletter",
            decided_prefix=f"{base}decided:",
            connection_events=f"{base}connection-events",
            failures=f"{base}gatekeeper:failures",
            responses=f"{base}responses",
            vehicle_state_prefix=f"{base}vehicle-state:",
            response_dedupe_prefix=f"{base}vehicles:dedupe:",
            unreadable_prefix="unreadable:" if self.shards == 1 else f"unreadable:{shard_tag(index, self.shards)}:",
            usage_prefix=f"{base}usage:",
            webhook_events=f"{base}webhook-events",
        )

    def _tagged(self, index: int) -> str:
        """`P:` unsharded, `P:{tag}:` for a shard of several."""
        return f"{self.prefix}:" if self.shards == 1 else f"{self.prefix}:{{{shard_tag(index, self.shards)}}}:"

    @property
    def sharded(self) -> bool:
        return self.shards > 1

    @property
    def all_shards(self) -> tuple[ShardKeys, ...]:
        return self._shard_keys

    def shard(self, index: int) -> ShardKeys:
        return self._shard_keys[index]

    def shard_of_vehicle(self, vehicle_id: str) -> ShardKeys:
        """Where a vehicle's requests go (and so its decisions come from): one shard, so they stay in order."""
        return self._shard_keys[shard_of(vehicle_id, self.shards)]

    def shard_of_connection(self, connection_id: str) -> ShardKeys:
        """The shard holding a connection's record and its events."""
        return self._shard_keys[shard_of(connection_id, self.shards)]

    def vehicle(self, vehicle_id: str) -> str:
        return f"{self.prefix}:vehicle:{vehicle_id}"

    @property
    def vehicle_pattern(self) -> str:
        return f"{self.prefix}:vehicle:*"

    @property
    def vins(self) -> str:
        """`P:vins`: the VIN index, VIN -> the id of the vehicle registered with it (services/registry/vins.py)."""
        return f"{self.prefix}:vins"

    def connection(self, connection_id: str) -> str:
        if self.shards == 1:
            return f"{self.prefix}:conn:{connection_id}"
        return f"{self._tagged(shard_of(connection_id, self.shards))}conn:{connection_id}"

    def connection_patterns(self) -> list[str]:
        """SCAN patterns matching every connection key, one per shard."""
        if self.shards == 1:
            return [self.connection("*")]
        return [f"{self._tagged(i)}conn:*" for i in range(self.shards)]

    def access(self, app_id: str = DEFAULT_APP_ID) -> AccessKeys:
        """An application's Vehicle Access versions and Connection Filters: the default app keeps the names it had
        before applications existed. One hash tag for all of them, so the publishing script's keys share a slot."""
        tagged = f"{self.prefix}:" if self.shards == 1 else f"{self.prefix}:{{access}}:"
        base = f"{tagged}access:" if app_id == DEFAULT_APP_ID else f"{tagged}app:{app_id}:access:"
        return AccessKeys(
            config_prefix=f"{base}config:",
            current=f"{base}current",
            version=f"{base}version",
            published=f"{base}published",
            filters=f"{base}filters",
        )

    def config(self, version: int) -> str:
        return f"{self.config_prefix}{version}"

    @property
    def config_prefix(self) -> str:
        return self.access().config_prefix

    @property
    def current_config(self) -> str:
        return self.access().current

    @property
    def config_version(self) -> str:
        return self.access().version

    @property
    def filters(self) -> str:
        return self.access().filters

    # --- applications, their connections' indexes and tokens (each read and written alone: no shared tag)

    def app(self, app_id: str) -> str:
        return f"{self.prefix}:app:{app_id}"

    @property
    def apps(self) -> str:
        return f"{self.prefix}:apps"

    def management_token(self, token_hash: str) -> str:
        return f"{self.prefix}:amt:{token_hash}"

    def app_connections(self, app_id: str) -> str:
        return f"{self.prefix}:app:{app_id}:connections"

    def app_revoked_connections(self, app_id: str) -> str:
        """The app's revoked connections (revocation is final), for listings that show them too."""
        return f"{self.prefix}:app:{app_id}:revoked"

    # --- webhooks (docs/webhooks.md): each key read and written alone, no shared tag

    def webhook(self, app_id: str, webhook_id: str) -> str:
        return f"{self.prefix}:app:{app_id}:webhook:{webhook_id}"

    def app_webhooks(self, app_id: str) -> str:
        return f"{self.prefix}:app:{app_id}:webhooks"

    def webhook_key(self, app_id: str) -> str:
        return f"{self.prefix}:app:{app_id}:webhook-key"

    def webhook_app(self, webhook_id: str) -> str:
        return f"{self.prefix}:webhook:{webhook_id}"

    def webhook_subscribers(self, webhook_id: str) -> str:
        return f"{self.prefix}:webhook:{webhook_id}:subscribers"

    def webhook_last(self, webhook_id: str, vehicle_id: str) -> str:
        return f"{self.prefix}:webhook:{webhook_id}:last:{vehicle_id}"

    def webhook_deliveries(self, webhook_id: str) -> str:
        return f"{self.prefix}:webhook:{webhook_id}:deliveries"

    def webhook_verify(self, webhook_id: str) -> str:
        """The outcome of the webhook's last VERIFY (services/webhooks/verify.py), for the dashboard and `show`."""
        return f"{self.prefix}:webhook:{webhook_id}:verify"

    def vehicle_webhooks(self, vehicle_id: str) -> str:
        return f"{self.prefix}:vehicle-webhooks:{vehicle_id}"

    @property
    def webhooks_deadletter(self) -> str:
        return f"{self.prefix}:webhooks:deadletter"

    def webhooks_lease(self, shard: int) -> str:
        return f"{self.prefix}:webhooks:lease:{shard}"

    @property
    def webhooks_triggers_lease(self) -> str:
        return f"{self.prefix}:webhooks:triggers-lease"

    @property
    def webhooks_due(self) -> str:
        """When the change poll and each webhook's schedule are next due (services/webhooks/schedule.py)."""
        return f"{self.prefix}:webhooks:due"

    def user_connections(self, app_id: str, user_id: str) -> str:
        return f"{self.prefix}:app:{app_id}:user:{user_id}"

    def token(self, kind: str, token_hash: str) -> str:
        return f"{self.prefix}:token:{kind}:{token_hash}"

    def rate_limit(self, endpoint: str, subject: str, window: int) -> str:
        """One window's count of calls of an HTTP endpoint by a subject (a client and an IP); expires."""
        return f"{self.prefix}:ratelimit:{endpoint}:{subject}:{window}"

    def connect_flow(self, flow_id: str) -> str:
        """One Connect flow in progress (the screens' server-side state); expires."""
        return f"{self.prefix}:connect:flow:{flow_id}"

    def connect_nonce(self, flow_id: str) -> str:
        """The one-time nonce of a flow's grant form as last rendered; consumed by the form's POST."""
        return f"{self.prefix}:connect:flow:{flow_id}:nonce"

    @property
    def dashboard_secret(self) -> str:
        """The dashboard's session-signing secret when no setting gives one: made once, shared by every process."""
        return f"{self.prefix}:dashboard:secret"

    def user_tokens(self, app_id: str, user_id: str) -> str:
        """The keys of the user's access and refresh tokens with the app (to revoke them together)."""
        return f"{self.prefix}:app:{app_id}:user:{user_id}:tokens"

    # The unsharded streams: with several shards each lives in `shard(i)`, and asking for "the" one is a bug.

    @property
    def connection_events(self) -> str:
        return self._only_shard.connection_events

    @property
    def requests(self) -> str:
        return self._only_shard.requests

    @property
    def decisions(self) -> str:
        return self._only_shard.decisions

    @property
    def deadletter(self) -> str:
        return self._only_shard.deadletter

    @property
    def _only_shard(self) -> ShardKeys:
        if self.shards != 1:
            raise ValueError(f"with {self.shards} shards each has its own streams: name one with keys.shard(i)")
        return self._shard_keys[0]

    def heartbeat(self, consumer: str) -> str:
        return f"{self.heartbeat_prefix}{consumer}"

    @property
    def heartbeat_prefix(self) -> str:
        """`P:gatekeeper:heartbeat:{consumer}` exists while that worker is alive (it expires)."""
        return f"{self.prefix}:gatekeeper:heartbeat:"

    @property
    def vehicles_clock(self) -> str:
        """`P:vehicles:clock`: the simulated vehicles' clock (JSON), set by the first vehicles service to start."""
        return f"{self.prefix}:vehicles:clock"

    def owner(self, email: str) -> str:
        """`P:owner:{email}`: a simulated fleet owner's account (simulator/accounts.py), by lower-case email."""
        return f"{self.prefix}:owner:{email}"

    @property
    def vehicles_heartbeat_prefix(self) -> str:
        """`P:vehicles:heartbeat:{consumer}` exists while that vehicles service is alive (it expires)."""
        return f"{self.prefix}:vehicles:heartbeat:"
