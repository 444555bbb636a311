"""The server-side scripts that make a batch's effects atomic.

`DECIDE` records each request id for the dedupe window, publishes the decision only if the id was new, and
acknowledges every entry of the batch, in one step: a crash can never leave a decision published without its
dedupe record, or recorded without being published, or published and still pending (and so decided twice).
"""

from __future__ import annotations

# KEYS: decisions stream, requests stream.
# ARGV: group, dedupe key prefix, window in seconds, decisions MAXLEN (0: none), then per entry:
#       entry id, request id, decision JSON.
# Returns one character per entry: "1" published, "0" a duplicate of an already decided request id.
DECIDE = """
local flags = {}
local ids = {}
for i = 5, #ARGV, 3 do
  ids[#ids + 1] = ARGV[i]
  if redis.call('SET', ARGV[2] .. ARGV[i + 1], ARGV[i], 'NX', 'EX', ARGV[3]) then
    if ARGV[4] == '0' then
      redis.call('XADD', KEYS[1], '*', 'data', ARGV[i + 2])
    else
      redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'data', ARGV[i + 2])
    end
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

# KEYS: dead-letter stream, requests stream. ARGV: group, MAXLEN (0: none), then per entry: entry id, JSON.
DEAD_LETTER = """
for i = 3, #ARGV, 2 do
  if ARGV[2] == '0' then
    redis.call('XADD', KEYS[1], '*', 'data', ARGV[i + 1])
  else
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'data', ARGV[i + 1])
  end
  redis.call('XACK', KEYS[2], ARGV[1], ARGV[i])
end
return (#ARGV - 2) / 2
"""
