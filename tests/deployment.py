"""Where a delivery test runs: the session's redis-server unsharded, or the local Redis Cluster with six shards.

A test module that takes the `deployment` fixture (tests/conftest.py) runs once on each; `lane` is the shard of
the test vehicle `bev`, so a test that names its streams through it runs unchanged on both.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from services.keyspace import Keys, ShardKeys
from services.redis_client import Client, client_for
from services.settings import Settings

CLUSTER_SHARDS = 6


@dataclass
class Deployment:
    name: str
    url: str
    cluster: bool
    keys: Keys
    client: Client

    @classmethod
    async def open(cls, name: str, url: str, *, cluster: bool) -> Deployment:
        keys = Keys(prefix=f"test-{uuid.uuid4().hex[:10]}", shards=CLUSTER_SHARDS if cluster else 1)
        settings = Settings(redis_url=url, redis_cluster=cluster, shards=keys.shards)
        client = client_for(settings)
        await client.initialize()
        return cls(name, url, cluster, keys, client)

    def settings(self, **overrides: Any) -> Settings:
        fields: dict[str, Any] = {
            "redis_url": self.url,
            "redis_cluster": self.cluster,
            "shards": self.keys.shards,
            "key_prefix": self.keys.prefix,
        }
        return Settings(**(fields | overrides))

    def lane(self, vehicle_id: str) -> ShardKeys:
        return self.keys.shard_of_vehicle(vehicle_id)

    async def publish(self, data: bytes, vehicle_id: str) -> bytes:
        """XADD a request where a producer would: the requests stream of the vehicle's shard."""
        entry_id = await self.client.xadd(self.lane(vehicle_id).requests, {"data": data})
        return entry_id if isinstance(entry_id, bytes) else entry_id.encode()

    async def publish_many(self, bodies: Iterable[dict[str, Any]]) -> int:
        """XADD many requests, pipelined, each to its vehicle's shard; returns how many."""
        count = 0
        async with self.client.pipeline(transaction=False) as pipe:
            for body in bodies:
                pipe.xadd(self.lane(body["vehicle_id"]).requests, {"data": json.dumps(body)})
                count += 1
            await pipe.execute()
        return count

    async def decision_count(self) -> int:
        return sum([int(await self.client.xlen(shard.decisions)) for shard in self.keys.all_shards])

    async def dead_letter_count(self) -> int:
        return sum([int(await self.client.xlen(shard.deadletter)) for shard in self.keys.all_shards])

    async def decided_request_ids(self) -> Counter[str]:
        return Counter(decision["request_id"] for decision in await self.decisions())

    async def decisions(self) -> list[dict[str, Any]]:
        """Every decision on every shard, decoded (shard by shard, each in stream order)."""
        found: list[dict[str, Any]] = []
        for shard in self.keys.all_shards:
            entries = await self.client.xrange(shard.decisions) or []
            found += [json.loads((fields or {})[b"data"]) for _, fields in entries]
        return found

    async def pending(self, group: str = "gatekeeper") -> int:
        """Entries delivered to `group` and not acknowledged, over every shard that has the group."""
        return sum(int(g["pending"]) for g in await self.groups(group))

    async def groups(self, group: str = "gatekeeper") -> list[dict[str, Any]]:
        """XINFO GROUPS' entry for `group` on every shard's requests stream that has it."""
        found = []
        for shard in self.keys.all_shards:
            if await self.client.exists(shard.requests):
                groups = await self.client.xinfo_groups(shard.requests)
                found += [g for g in groups if g["name"] in (group, group.encode())]
        return found

    def environment(self, **settings: Any) -> dict[str, str]:
        """The environment of a process on this deployment (a worker, the CLI); `settings` are Settings fields."""
        return self.settings(**settings).environment()
