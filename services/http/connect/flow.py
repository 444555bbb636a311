"""A Connect flow's server-side state: one JSON record per flow in Redis (`Keys.connect_flow`), expiring.

The browser holds only the flow id (a hidden field or a query parameter: 256 random bits). Which screen may be
shown follows from what the flow holds: `continued` (preamble passed), `make` (brand chosen or given), `user_id`
(signed in), `done` (ended in a redirect: nothing more is accepted). The grant form's one-time nonce lives in its
own key (`Keys.connect_nonce`) so that it is consumed atomically by the POST that presents it.
"""

from __future__ import annotations

import secrets
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from schemas.application import AppMode
from schemas.permissions import PermissionSet
from schemas.scope import parse_scope
from services.keyspace import Keys
from services.redis_client import Client

# KEYS: the nonce. ARGV: the nonce presented. Deletes it and answers 1 only when it matches.
_CONSUME_NONCE = """
local current = redis.call('GET', KEYS[1])
if current and current == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


class FlowKind(StrEnum):
    AUTHORIZE = "authorize"
    """`/oauth/authorize`: ends in `code` and `state`."""
    REAUTHENTICATE = "reauthenticate"
    """`/oauth/reauthenticate`: one vehicle's connection re-authorized; ends in `vehicle_id` and `state`."""


class FlowVehicle(BaseModel):
    """A vehicle of the signed-in account, as the grant screen shows it."""

    model_config = ConfigDict(frozen=True)

    id: str
    make: str
    model: str
    year: int
    vin: str
    admitted: bool
    """Whether the app's Connection Filters admit its powertrain (only admitted ones can be selected)."""


class Flow(BaseModel):
    """One owner's way through Connect, from the validated authorize request to the redirect back."""

    id: str
    kind: FlowKind
    app_id: str
    app_name: str
    redirect_uri: str
    """Validated against the app's registered URIs: the only place the flow ever redirects to."""
    state: str | None = None
    requested: str
    """The requested permissions, canonical scope string (from `scope`, or derived from the app's config)."""
    scope: str | None = None
    """The canonical `scope` of the request; None when the permissions come from the app's current config."""
    mode: AppMode
    approval_prompt: str = "auto"
    make: str | None = None
    single_select: bool = False
    single_select_vin: str | None = None
    reauth_vehicle_id: str | None = None
    flags: str | None = None
    user: str | None = None
    continued: bool = False
    user_id: str | None = None
    vehicles: list[FlowVehicle] = []
    done: bool = False

    @property
    def permissions(self) -> PermissionSet:
        return parse_scope(self.requested)

    @property
    def admitted(self) -> list[FlowVehicle]:
        return [v for v in self.vehicles if v.admitted]


def new_flow_id() -> str:
    return secrets.token_urlsafe(32)


class FlowStore:
    """Flows in Redis, each expiring `ttl_s` after its last change."""

    def __init__(self, redis: Client, keys: Keys, ttl_s: int) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_s = ttl_s
        self._consume = redis.register_script(_CONSUME_NONCE)

    async def save(self, flow: Flow) -> None:
        await self.redis.set(self.keys.connect_flow(flow.id), flow.model_dump_json(), ex=self.ttl_s)

    async def get(self, flow_id: str) -> Flow | None:
        """The flow, or None for an unknown or expired id (or one that is not even the shape of an id)."""
        if not flow_id or len(flow_id) > 100:
            return None
        record = await self.redis.get(self.keys.connect_flow(flow_id))
        return None if record is None else Flow.model_validate_json(record)

    async def new_nonce(self, flow: Flow) -> str:
        """A fresh nonce for the grant form about to be rendered; the previous one stops working."""
        nonce = secrets.token_urlsafe(24)
        await self.redis.set(self.keys.connect_nonce(flow.id), nonce, ex=self.ttl_s)
        return nonce

    async def consume_nonce(self, flow: Flow, presented: str) -> bool:
        """True, once, for the nonce of the form last rendered for this flow; False for anything else."""
        if not presented or len(presented) > 100:
            return False
        return bool(await self._consume(keys=[self.keys.connect_nonce(flow.id)], args=[presented]))
