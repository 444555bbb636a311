"""Short-lived memory of the vehicle API's two lookups per call: access token -> grant, and (app, user, vehicle)
-> the user's connection. Without it every call costs two or three Redis round trips before its request is even
sent (about a quarter of the API process's CPU per call, measured with bench/api.py).

Why staleness is safe here: the gatekeeper decides every request against the connection record it reads itself
(schemas/decision.py), so a remembered connection revoked meanwhile gets UNAUTHORIZED, the same AUTHENTICATION 401
a fresh lookup would answer. What may be stale, for at most `FLEETGATE_API_CACHE_TTL_S` (default 1 s; 0 turns the
memory off), and only in API processes other than the one that revoked: a token revoked or expired still answering
`/v2.0/user`, or a connection replaced by a new one after a re-connect still answering 401. The process that
revokes or connects forgets everything at once (`forget_all`). Only positive answers are kept (an unknown token
costs a lookup every time and cannot fill the memory), at most `MAX_ENTRIES` of each (the oldest go first).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from schemas.connection import Connection
from services.registry import TokenGrant, TokenStore
from services.registry.apps import token_hash

MAX_ENTRIES = 100_000
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(slots=True)
class TtlMemory(Generic[K, V]):
    """Values for `ttl_s` seconds each, at most `max_entries` (insertion order: the oldest are dropped first)."""

    ttl_s: float
    max_entries: int = MAX_ENTRIES
    clock: Callable[[], float] = time.monotonic
    _entries: dict[K, tuple[float, V]] = field(default_factory=dict)

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V | None]]) -> V | None:
        """The remembered value, or `load()`'s (remembered when not None)."""
        if self.ttl_s <= 0:
            return await load()
        now = self.clock()
        found = self._entries.get(key)
        if found is not None and found[0] > now:
            return found[1]
        value = await load()
        self._entries.pop(key, None)
        if value is not None:
            while len(self._entries) >= self.max_entries:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = (now + self.ttl_s, value)
        return value

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(slots=True)
class Lookups:
    """The process's memory of grants and connections (one per `HttpContext`)."""

    ttl_s: float
    grants: TtlMemory[str, TokenGrant] = field(init=False)
    connections: TtlMemory[tuple[str, str, str], Connection] = field(init=False)

    def __post_init__(self) -> None:
        self.grants = TtlMemory(self.ttl_s)
        self.connections = TtlMemory(self.ttl_s)

    async def access(self, tokens: TokenStore, access_token: str) -> TokenGrant | None:
        """`TokenStore.access`, remembered under the token's hash (no token is kept in memory)."""
        return await self.grants.get_or_load(token_hash(access_token), lambda: tokens.access(access_token))

    def forget_all(self) -> None:
        """After this process revoked or made a connection: its own next calls see the change at once."""
        self.grants.clear()
        self.connections.clear()
