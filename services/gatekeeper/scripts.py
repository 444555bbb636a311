"""The server-side scripts that make a batch's effects atomic, each with the arguments it takes and its reply.

`COMMIT` records each request id in the dedupe window (services/dedupe.py), publishes the decision only if the id
was new, and acknowledges every entry of the batch, in one step: a crash can never leave a decision published
without its dedupe record, or recorded without being published, or published and still pending (and so decided
twice).
`DEAD_LETTER` adds entries to the dead-letter stream and acknowledges them, in one step.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from services.dedupe import DedupeWindow
from services.gatekeeper.resp import Arg, PackedTail, RespScript
from services.keyspace import ShardKeys

# KEYS: decisions stream, requests stream, then the dedupe window's buckets to check (services/dedupe.py): the
# first is checked and never written (for a worker whose clock runs ahead), the second is the current one, which
# takes the batch's new ids.
# ARGV: group, the current bucket's expiry (unix seconds), then per entry: entry id, request id, decision JSON.
# Returns one character per entry: "1" published, "0" a duplicate of a request id decided before (or earlier in
# the batch). Per batch one SMISMEMBER per bucket that exists and one SADD (per 2,000 ids: Lua's unpack takes at
# most 8,000 values); per entry only its XADD.
# The decisions stream is trimmed by its retention (services/retention.py), never here: a trim on XADD would drop
# entries a consumer group has not read yet.
COMMIT = """
local n = (#ARGV - 2) / 3
local entries, requests = {}, {}
for i = 1, n do
  entries[i] = ARGV[i * 3]
  requests[i] = ARGV[i * 3 + 1]
end
local seen = {}
for k = 3, #KEYS do
  if redis.call('EXISTS', KEYS[k]) == 1 then
    local found = redis.call('SMISMEMBER', KEYS[k], unpack(requests))
    for i = 1, n do
      if found[i] == 1 then seen[requests[i]] = true end
    end
  end
end
local flags, fresh = {}, {}
for i = 1, n do
  local request = requests[i]
  if seen[request] then
    flags[i] = '0'
  else
    seen[request] = true
    redis.call('XADD', KEYS[1], '*', 'data', ARGV[i * 3 + 2])
    fresh[#fresh + 1] = request
    flags[i] = '1'
  end
end
for first = 1, #fresh, 2000 do
  redis.call('SADD', KEYS[4], unpack(fresh, first, math.min(first + 1999, #fresh)))
end
if #fresh > 0 then
  redis.call('EXPIREAT', KEYS[4], ARGV[2])
end
if n > 0 then
  redis.call('XACK', KEYS[2], ARGV[1], unpack(entries))
end
return table.concat(flags)
"""


@dataclass(frozen=True, slots=True)
class Committed:
    """What a COMMIT did: decisions published, by outcome, and duplicates acknowledged without one."""

    published: Counter[str]
    duplicates: int


class Commit:
    """One batch's COMMIT: entries added one by one (the hot path), then run as one script."""

    __slots__ = ("args", "entries", "keys", "outcomes")

    def __init__(self, shard: ShardKeys, group: str, window: DedupeWindow, now: float) -> None:
        checked = window.checked(now)
        self.keys = [shard.decisions, shard.requests, *map(shard.decided, checked)]
        self.args: list[Arg] = [group, window.expires_at(checked[1])]
        self.entries = PackedTail()
        self.outcomes: list[str] = []

    def add(self, entry_id: str, request_id: str, decision: str, outcome: str) -> None:
        self.entries.add_three(entry_id, request_id, decision)
        self.outcomes.append(outcome)

    async def run(self, script: RespScript) -> Committed:
        """Run the script (nothing to do for an empty batch) and read its reply."""
        if not self.outcomes:
            return Committed(Counter(), 0)
        return self.reply(await script(self.keys, self.args, self.entries))

    def reply(self, flags: Any) -> Committed:
        text = flags.decode() if isinstance(flags, bytes) else str(flags)
        published = Counter(o for o, flag in zip(self.outcomes, text, strict=True) if flag == "1")
        return Committed(published, text.count("0"))


# KEYS: dead-letter stream, requests stream, failures hash. ARGV: group, MAXLEN (0: none), then per entry: entry id,
# JSON. The entry's recorded failure goes with it.
DEAD_LETTER = """
for i = 3, #ARGV, 2 do
  if ARGV[2] == '0' then
    redis.call('XADD', KEYS[1], '*', 'data', ARGV[i + 1])
  else
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'data', ARGV[i + 1])
  end
  redis.call('XACK', KEYS[2], ARGV[1], ARGV[i])
  redis.call('HDEL', KEYS[3], ARGV[i])
end
return (#ARGV - 2) / 2
"""


def dead_letter_arguments(
    shard: ShardKeys, group: str, maxlen: int, letters: list[tuple[bytes, bytes]]
) -> tuple[list[str], list[Arg]]:
    """DEAD_LETTER's keys and arguments for (entry id, dead-letter JSON) pairs."""
    args: list[Arg] = [group, maxlen]
    for entry_id, letter in letters:
        args += (entry_id, letter)
    return [shard.deadletter, shard.requests, shard.failures], args
