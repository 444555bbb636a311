"""The vehicles service's one script per batch: each answered request's response, the vehicle state it changed,
its dedupe record and the acknowledgement of its decision, written in one step.

A command's effect and its response never part ways: both are written by the same script, or neither; so do a
request and the count it took from a `next N` fault (the vehicle's faults, field `f` of its state hash). State and
fault changes are checked against the version the service read (optimistic concurrency): a vehicle whose state or
faults another process changed meanwhile is not written, its entry stays unacknowledged and the service answers it
again from the new state. A request id answered before (a redelivered decision, or one published twice) gets no
second response, and its state and fault changes are dropped with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.gatekeeper.resp import Arg
from services.keyspace import ShardKeys

# KEYS: responses stream, decisions stream.
# ARGV: group, dedupe prefix, window in seconds, state prefix, then per entry: entry id, request id, response JSON
#       ('' to acknowledge only), vehicle id, the state version read, the new state ('' if unchanged), the new
#       faults ('' if unchanged).
# Returns one character per entry: "1" answered, "0" a duplicate (acknowledged, nothing written), "-" acknowledged
# only, "C" its vehicle's state changed since it was read (not acknowledged: to be answered again).
RESPOND = """
local flags, acks = {}, {}
for i = 5, #ARGV, 7 do
  local entry, request, response, vehicle, version, state, faults = ARGV[i], ARGV[i + 1], ARGV[i + 2],
    ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  local flag = '-'
  if response ~= '' then
    local key = ARGV[4] .. vehicle
    local writes = state ~= '' or faults ~= ''
    if writes and (redis.call('HGET', key, 'n') or '0') ~= version then
      flag = 'C'
    elseif redis.call('SET', ARGV[2] .. request, entry, 'NX', 'EX', ARGV[3]) then
      if writes then
        redis.call('HSET', key, 'n', tonumber(version) + 1)
        if state ~= '' then redis.call('HSET', key, 's', state) end
        if faults ~= '' then redis.call('HSET', key, 'f', faults) end
      end
      redis.call('XADD', KEYS[1], '*', 'data', response)
      flag = '1'
    else
      flag = '0'
    end
  end
  flags[#flags + 1] = flag
  if flag ~= 'C' then acks[#acks + 1] = entry end
end
if #acks > 0 then
  redis.call('XACK', KEYS[2], ARGV[1], unpack(acks))
end
return table.concat(flags)
"""


@dataclass(slots=True)
class Respond:
    """One batch's RESPOND: entries added in stream order, then run as one script."""

    shard: ShardKeys
    group: str
    dedupe_window_s: int
    args: list[Arg] = field(default_factory=list)
    entry_ids: list[bytes] = field(default_factory=list)
    vehicles: dict[bytes, str] = field(default_factory=dict)
    """The vehicle each answered entry is about."""
    written: dict[bytes, Any] = field(default_factory=dict)
    """The vehicle's stored state (store.Stored) each entry that writes one leaves, once the script has written it."""

    def acknowledge(self, entry_id: bytes) -> None:
        """A decision that needs no answer (not ALLOWED, or not readable)."""
        self.args += (entry_id, "", "", "", 0, "", "")
        self.entry_ids.append(entry_id)

    def answer(
        self,
        entry_id: bytes,
        request_id: str,
        response: bytes,
        *,
        vehicle_id: str,
        version: int,
        state: bytes | None,
        faults: bytes | None = None,
    ) -> None:
        """A response, written with the vehicle's new state and faults (None: unchanged) if it is still at `version`."""
        self.args += (entry_id, request_id, response, vehicle_id, version, state or b"", faults or b"")
        self.entry_ids.append(entry_id)
        self.vehicles[entry_id] = vehicle_id

    def arguments(self) -> tuple[list[str], list[Arg]]:
        keys = [self.shard.responses, self.shard.decisions]
        head: list[Arg] = [self.group, self.shard.response_dedupe_prefix, self.dedupe_window_s]
        return keys, [*head, self.shard.vehicle_state_prefix, *self.args]


@dataclass(frozen=True, slots=True)
class Responded:
    """What a RESPOND did, per entry id: "1" answered, "0" duplicate, "-" acknowledged only, "C" conflict."""

    flags: dict[bytes, str]

    @classmethod
    def of(cls, respond: Respond, reply: Any) -> Responded:
        text = reply.decode() if isinstance(reply, bytes) else str(reply)
        return cls(dict(zip(respond.entry_ids, text, strict=True)))

    def count(self, flag: str) -> int:
        return sum(1 for value in self.flags.values() if value == flag)

    @property
    def conflicts(self) -> list[bytes]:
        return [entry_id for entry_id, flag in self.flags.items() if flag == "C"]
