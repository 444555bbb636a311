"""A lease: one process at a time holds a Redis key (SET NX PX with a token of its own), renews it while it works,
and lets it go when it stops; a holder that dies loses it when it expires, and another process takes it then.

Renewing and letting go compare the token first (a script), so a process whose lease expired while it was stalled
never extends or deletes the lease another process has taken since. A stalled holder may still finish the step it
was in after its lease passed on: what a lease guards must tolerate that (the webhook triggers do: at least once).
"""

from __future__ import annotations

import secrets

from services.redis_client import Client

# KEYS: the lease. ARGV: the token, the lease in ms. 1 if held (and now extended), else 0.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS: the lease. ARGV: the token. 1 if it was held and is now free.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Lease:
    """One process's claim on `key`, for `lease_ms` at a time."""

    def __init__(self, redis: Client, key: str, lease_ms: int) -> None:
        self.redis = redis
        self.key = key
        self.lease_ms = lease_ms
        self.token = secrets.token_hex(8)
        self.held = False
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def hold(self) -> bool:
        """Renew the lease if this process holds it, else take it if it is free; whether it is held now."""
        if self.held and await self._renew(keys=[self.key], args=[self.token, self.lease_ms]):
            return True
        self.held = bool(await self.redis.set(self.key, self.token, nx=True, px=self.lease_ms))
        return self.held

    async def release(self) -> None:
        """Let the lease go now (so another process need not wait for it to expire)."""
        if self.held:
            self.held = False
            await self._release(keys=[self.key], args=[self.token])
