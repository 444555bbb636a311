"""The server-side scripts that make a batch's effects atomic, each with the arguments it takes and its reply.

`COMMIT` records each request id for the dedupe window, publishes the decision only if the id was new, and
acknowledges every entry of the batch, in one step: a crash can never leave a decision published without its
dedupe record, or recorded without being published, or published and still pending (and so decided twice).
`DEAD_LETTER` adds entries to the dead-letter stream and acknowledges them, in one step.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from services.gatekeeper.resp import Arg, RespScript
from services.keyspace import ShardKeys

# KEYS: decisions stream, requests stream.
# ARGV: group, dedupe key prefix, window in seconds, then per entry: entry id, request id, decision JSON.
# Returns one character per entry: "1" published, "0" a duplicate of an already decided request id.
# The decisions stream is trimmed by its retention (services/retention.py), never here: a trim on XADD would drop
# entries a consumer group has not read yet.
COMMIT = """
local flags = {}
local ids = {}
for i = 4, #ARGV, 3 do
  ids[#ids + 1] = ARGV[i]
  if redis.call('SET', ARGV[2] .. ARGV[i + 1], ARGV[i], 'NX', 'EX', ARGV[3]) then
    redis.call('XADD', KEYS[1], '*', 'data', ARGV[i + 2])
    flags[#flags + 1] = '1'
  else
    flags[#flags + 1] = '0'
  end
end
if #ids > 0 then
  redis.call('XACK', KEYS[2], ARGV[1], unpack(ids))
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

    __slots__ = ("args", "keys", "outcomes")

    def __init__(self, shard: ShardKeys, group: str, dedupe_window_s: int) -> None:
        self.keys = [shard.decisions, shard.requests]
        self.args: list[Arg] = [group, shard.dedupe_prefix, dedupe_window_s]
        self.outcomes: list[str] = []

    def add(self, entry_id: bytes, request_id: str, decision: bytes, outcome: str) -> None:
        self.args += (entry_id, request_id, decision)
        self.outcomes.append(outcome)

    async def run(self, script: RespScript) -> Committed:
        """Run the script (nothing to do for an empty batch) and read its reply."""
        if not self.outcomes:
            return Committed(Counter(), 0)
        return self.reply(await script(self.keys, self.args))

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
