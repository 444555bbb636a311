"""Retention of an output stream (decisions; the responses stream to come) that never loses a consumer's entries.

An entry is dropped when it is beyond the retention (more than `maxlen` newer entries, or older than `max_age`)
and every consumer group on the stream has acknowledged it, as the requests stream is trimmed. A group that stops
reading thus holds the stream; the hard cap is the memory safety valve: past it the oldest entries go whatever
the groups say, and how many each group had not yet read is counted and returned, never silent. One server-side
script per stream does it all (a consistent view of the groups, trimmed in the same step), exactly (not `~`): it
runs once per trim interval, so exactness costs nothing that matters.

How many entries a group still needs: its lag (entries after its last-delivered id) plus, when it has entries
pending, those from its oldest pending one to its last-delivered one (counted up to RETAIN_PROBE; a group that
holds one entry pending while more than that were delivered after it is honoured by its oldest pending id only).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from services.redis_client import Client

log = logging.getLogger("fleetgate.retention")

RETAIN_PROBE = 10_000

# KEYS: the stream. ARGV: retention count (0: none), hard cap (0: none), the oldest id kept by age ('0': none),
# probe limit. Returns {trimmed, {group, unread trimmed, ...}, {group, pending, lag (-1: unknown), ...}}.
RETAIN = """
local key = KEYS[1]
local retain, cap, age_id, probe = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local function field(list, name)
  for i = 1, #list, 2 do
    if list[i] == name then return list[i + 1] end
  end
  return nil
end
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local ams, aseq = parse(a)
  local bms, bseq = parse(b)
  return ams < bms or (ams == bms and aseq < bseq)
end
local function after(id)
  local ms, seq = parse(id)
  return string.format('%.0f-%.0f', ms, seq + 1)
end

if redis.call('EXISTS', key) == 0 then return {0, {}, {}} end
local len = redis.call('XLEN', key)
local groups = redis.call('XINFO', 'GROUPS', key)
local trimmed, lost = 0, {}

if cap > 0 and len > cap then
  local info = redis.call('XINFO', 'STREAM', key)
  local added = tonumber(field(info, 'entries-added'))
  local n = redis.call('XTRIM', key, 'MAXLEN', cap)
  local first = redis.call('XRANGE', key, '-', '+', 'COUNT', 1)[1][1]
  local gone = added - len          -- entries trimmed before this call
  for _, g in ipairs(groups) do
    local last, read, lag = field(g, 'last-delivered-id'), field(g, 'entries-read'), field(g, 'lag')
    local unread = 0
    if less(last, first) then       -- some of the entries trimmed now came after what it has read
      local position = read and tonumber(read) or (lag and added - tonumber(lag)) or gone
      unread = math.min(n, (gone + n) - math.max(position, gone))
    end
    if unread > 0 then
      lost[#lost + 1] = field(g, 'name')
      lost[#lost + 1] = unread
    end
  end
  trimmed, len = n, len - n
  groups = redis.call('XINFO', 'GROUPS', key)
end

local stats, floor, need, counted = {}, nil, 0, true
local oldest = redis.call('XRANGE', key, '-', '+', 'COUNT', 1)[1]
for _, g in ipairs(groups) do
  local name, pending, last, lag = field(g, 'name'), field(g, 'pending'), field(g, 'last-delivered-id'), field(g, 'lag')
  if oldest and less(last, oldest[1]) then
    lag = len  -- everything is after it (Redis 7.0 would report its lag as if nothing had been trimmed)
  end
  local group_floor, group_need = after(last), lag and tonumber(lag) or nil
  if pending > 0 then
    group_floor = redis.call('XPENDING', key, name)[2]
    local span = #redis.call('XRANGE', key, group_floor, last, 'COUNT', probe)
    if span >= probe then counted = false end
    if group_need then group_need = group_need + span end
  end
  if group_need == nil then counted = false else need = math.max(need, group_need) end
  if floor == nil or less(group_floor, floor) then floor = group_floor end
  stats[#stats + 1] = name
  stats[#stats + 1] = pending
  stats[#stats + 1] = lag or -1
end

if retain > 0 and len > retain then
  if floor == nil then
    trimmed = trimmed + redis.call('XTRIM', key, 'MAXLEN', retain)
  elseif counted then
    trimmed = trimmed + redis.call('XTRIM', key, 'MAXLEN', math.max(retain, need))
  else
    trimmed = trimmed + redis.call('XTRIM', key, 'MINID', floor)
  end
end
if age_id ~= '0' then
  if floor ~= nil and less(floor, age_id) then age_id = floor end
  trimmed = trimmed + redis.call('XTRIM', key, 'MINID', age_id)
end
return {trimmed, lost, stats}
"""


@dataclass(frozen=True, slots=True)
class GroupState:
    """A consumer group on the stream, as the retention saw it."""

    pending: int
    lag: int | None
    """Entries not yet delivered to it (None: Redis cannot tell)."""


@dataclass(frozen=True, slots=True)
class Retained:
    """What one retention pass did to a stream."""

    trimmed: int
    unread_trimmed: dict[str, int] = field(default_factory=dict)
    """Per group: entries the hard cap trimmed before the group read them (lost to it)."""
    groups: dict[str, GroupState] = field(default_factory=dict)


class Retention:
    """The retention of output streams of one kind (`maxlen`, `hard_cap`, `max_age_s`; 0: none)."""

    def __init__(self, redis: Client, *, maxlen: int, hard_cap: int, max_age_s: int) -> None:
        self.script = redis.register_script(RETAIN)
        self.maxlen = maxlen
        self.hard_cap = hard_cap
        self.max_age_s = max_age_s

    async def apply(self, stream: str, now_ms: int = 0) -> Retained:
        """Trim `stream` as the retention says; `now_ms` is the stream server's clock (ids start with its time),
        needed only with a `max_age_s`."""
        if self.max_age_s and not now_ms:
            raise ValueError("a retention by age needs the stream server's time")
        oldest_kept = f"{now_ms - 1000 * self.max_age_s}-0" if self.max_age_s else "0"
        reply = await self.script(keys=[stream], args=[self.maxlen, self.hard_cap, oldest_kept, RETAIN_PROBE])
        return _retained(reply)


def _retained(reply: Any) -> Retained:
    trimmed, lost, stats = reply
    unread = {_text(lost[i]): int(lost[i + 1]) for i in range(0, len(lost), 2)}
    groups = {
        _text(stats[i]): GroupState(int(stats[i + 1]), None if int(stats[i + 2]) < 0 else int(stats[i + 2]))
        for i in range(0, len(stats), 3)
    }
    return Retained(int(trimmed), unread, groups)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
