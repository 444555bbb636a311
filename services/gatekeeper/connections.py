"""How many Redis connections a gatekeeper worker needs on each server, and the start-up check that they can have them.

Each of the worker's tasks runs one command at a time, so it holds at most one connection to a server at once:

- a consume loop: its blocking XREADGROUP, then its batch's cache load (one MGET) and COMMIT, one after the other;
- the connection-event follower: one blocking XREAD (one Redis) or one pipeline of polls per master (a cluster);
- each upkeep job (reclaim, trims, heartbeat), running its commands in turn.

On one Redis the consume loops are `batches_in_flight`, each reading every shard of the worker in one XREADGROUP:
the need does not depend on the shards. On a Redis Cluster one read cannot name the streams of two slots
(CROSSSLOT), so each consumed shard has a loop of its own, and a loop's cache load reads every master: each master
may see one connection per consumed shard. The worker's pool is sized to the need (a pool too small fails commands
with "Too many connections", a revocation's reader among them), and the worker refuses to start where a server
cannot take that many clients.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from services.errors import ConnectionLimitError
from services.redis_client import Client, client_limits, redact
from services.settings import Settings

log = logging.getLogger("fleetgate.gatekeeper")

UPKEEP_JOBS = 4
"""serve()'s periodic jobs (reclaim, trim requests, trim by age, heartbeat); more here if it gets more."""
SPARE = 2
"""For what is short-lived: the heartbeat's deletion at stop, a cluster client reading its slot map again."""


@dataclass(frozen=True, slots=True)
class ConnectionNeed:
    """The connections a worker may hold to each server at once."""

    consume_loops: int
    followers: int = 1
    upkeep_jobs: int = UPKEEP_JOBS
    spare: int = SPARE

    @property
    def per_server(self) -> int:
        return self.consume_loops + self.followers + self.upkeep_jobs + self.spare

    def __str__(self) -> str:
        return (
            f"{self.per_server} ({self.consume_loops} consume loops, {self.followers} connection-event reader, "
            f"{self.upkeep_jobs} upkeep jobs, {self.spare} spare)"
        )


def consume_loops(settings: Settings) -> int:
    """The worker's consume loops: `batches_in_flight` on one Redis; on a cluster as many for each consumed shard as
    share them out (at least one each)."""
    if not settings.redis_cluster:
        return settings.batches_in_flight
    shards = len(settings.worker_shard_numbers)
    return shards * math.ceil(settings.batches_in_flight / shards)


def connections_needed(settings: Settings) -> ConnectionNeed:
    """What a worker with these settings may hold to each server (each master of a cluster) at once."""
    return ConnectionNeed(consume_loops(settings))


async def refuse_too_few_clients(client: Client, settings: Settings) -> None:
    """Raise ConnectionLimitError when a server's `maxclients`, less the clients it has now, is below the need.

    A worker that started anyway would fail some commands with "max number of clients reached", its revocation
    reader among them. The clients counted include the one asking; a server that does not tell its limit passes.
    """
    need = connections_needed(settings)
    for server, (maxclients, connected) in sorted((await client_limits(client)).items()):
        others = connected - 1  # this check's own connection is one of the worker's
        if need.per_server <= maxclients - others:
            continue
        name = redact(settings.redis_url) if server == "server" else server
        if settings.redis_cluster:
            consumed = len(settings.worker_shard_numbers)
            fix = f"consume fewer shards per worker (FLEETGATE_WORKER_SHARDS; this one consumes {consumed})"
        else:
            fix = f"lower FLEETGATE_BATCHES_IN_FLIGHT (now {settings.batches_in_flight})"
        raise ConnectionLimitError(
            f"Redis at {name} has maxclients {maxclients} and {others} other clients connected: this worker needs "
            f"up to {need}; {fix}, or raise maxclients (CONFIG SET maxclients, or maxclients in redis.conf)"
        )
