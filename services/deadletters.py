"""Dead letters: list them over every shard, show one, and re-publish (redrive) them once their cause is fixed.

The gatekeeper sets an entry it gave up on aside on its shard's dead-letter stream (`ShardKeys.deadletter`), as a
`DeadLetterMessage` in the field `data`. A redrive writes the original entry's fields again (a new entry id) to
the requests stream it came from and deletes the dead letter, in one server-side script: both streams carry the
shard's hash tag, so the script runs on a Redis Cluster too, and no crash leaves a request re-published with its
dead letter still there (to be re-published twice) or deleted without it. A redriven request already decided gets
no second decision: the gatekeeper's dedupe (its COMMIT script) acknowledges it without one.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, cast

from pydantic import ValidationError

from schemas.errors import describe_validation_error
from schemas.messages import DeadLetterMessage
from services.errors import ServiceError
from services.keyspace import Keys, ShardKeys
from services.redis_client import Client
from services.streams import Entry, split_id

CHUNK = 200
"""Dead letters read and redriven per round trip by `redrive_all`: its memory is bounded whatever the backlog."""

_ENTRY_ID = re.compile(r"[0-9]+-[0-9]+")

# KEYS: dead-letter stream, requests stream (one shard's).
# ARGV: strict ("1": a letter gone, changed or naming another stream refuses them all, nothing written; "0": such
#       letters are skipped), then per letter: its entry id, its `data` as read, n, and n field names and values.
# Returns {"ok", per letter the new requests entry id or "" (skipped)}, or {problem, entry id} when strict.
REDRIVE = """
local letters = {}
local i = 2
while i <= #ARGV do
  local id, data, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local problem = false
  local found = redis.call('XRANGE', KEYS[1], id, id)
  if #found == 0 then
    problem = 'missing'
  else
    local stored, fields = false, found[1][2]
    for j = 1, #fields, 2 do
      if fields[j] == 'data' then stored = fields[j + 1] end
    end
    if stored ~= data then
      problem = 'changed'
    else
      local ok, letter = pcall(cjson.decode, data)
      if not ok or type(letter) ~= 'table' or letter['stream'] ~= KEYS[2] then problem = 'foreign' end
    end
  end
  if problem and ARGV[1] == '1' then return {problem, id} end
  letters[#letters + 1] = {id, problem, i + 3, i + 2 + 2 * n}
  i = i + 3 + 2 * n
end
local replies = {'ok'}
for _, letter in ipairs(letters) do
  if letter[2] then
    replies[#replies + 1] = ''
  else
    replies[#replies + 1] = redis.call('XADD', KEYS[2], '*', unpack(ARGV, letter[3], letter[4]))
    redis.call('XDEL', KEYS[1], letter[1])
  end
end
return replies
"""

_PROBLEMS = {
    "missing": "is no longer there (redriven, or trimmed)",
    "changed": "changed since it was read",
    "foreign": "does not name this shard's requests stream",
}


class DeadLetterError(ServiceError):
    """A dead letter that is not there, is on several shards, or cannot be re-published; nothing was written."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One entry of a dead-letter stream, and its message; `message` is None and `unreadable` says why when its
    `data` is not a valid DeadLetterMessage (the stream is written by hand too: it must never crash a reader)."""

    id: str
    shard: ShardKeys
    data: bytes | None
    message: DeadLetterMessage | None
    unreadable: str | None

    @property
    def where(self) -> str:
        return f"{self.id} on {self.shard.deadletter}"

    @property
    def request_id(self) -> str | None:
        """The original request's `request_id`, when its `data` is a JSON object holding a string one."""
        text = self.message.fields.get("data") if self.message else None
        try:
            body = json.loads(text) if text is not None else None
        except (ValueError, RecursionError):
            return None
        request_id = body.get("request_id") if isinstance(body, dict) else None
        return request_id if isinstance(request_id, str) else None


@dataclass(frozen=True, slots=True)
class Redriven:
    """A dead letter re-published: its id, and the new entry's id on `stream` (the shard's requests stream)."""

    letter: DeadLetter
    stream: str
    entry_id: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """A dead letter `redrive_all` left where it is, and why (a sentence that names the letter)."""

    letter: DeadLetter
    reason: str


def read_letter(shard: ShardKeys, entry_id: bytes, fields: dict[bytes, bytes]) -> DeadLetter:
    """A dead-letter stream entry as a DeadLetter, readable or not."""
    text = entry_id.decode()
    data = fields.get(b"data")
    if data is None:
        return DeadLetter(text, shard, None, None, "no data field")
    try:
        return DeadLetter(text, shard, data, DeadLetterMessage.model_validate_json(data), None)
    except ValidationError as exc:
        return DeadLetter(text, shard, data, None, describe_validation_error(exc).replace("\n", "; "))


async def list_letters(redis: Client, keys: Keys, *, limit: int, newest_first: bool = True) -> list[DeadLetter]:
    """Up to `limit` dead letters over every shard's stream, newest (or oldest) first by entry id."""
    found: list[DeadLetter] = []
    for shard in keys.all_shards:
        if newest_first:
            entries = _entries(await redis.xrevrange(shard.deadletter, count=limit))
        else:
            entries = _entries(await redis.xrange(shard.deadletter, count=limit))
        found += [read_letter(shard, entry_id, fields) for entry_id, fields in entries]
    found.sort(key=lambda letter: (split_id(letter.id), letter.shard.index), reverse=newest_first)
    return found[:limit]


async def find_letter(redis: Client, keys: Keys, entry_id: str, shard: int | None = None) -> DeadLetter:
    """The dead letter `entry_id`, on shard `shard` or on whichever shard holds it (ids repeat across shards: one
    found on several is an error that names them)."""
    if not _ENTRY_ID.fullmatch(entry_id):
        raise DeadLetterError(f"{entry_id!r} is not a stream entry id (like 1764331200000-0)")
    if shard is not None and not 0 <= shard < keys.shards:
        raise DeadLetterError(f"shard {shard}: shards are numbered 0 to {keys.shards - 1}")
    candidates = keys.all_shards if shard is None else (keys.shard(shard),)
    found = []
    for candidate in candidates:
        entries = _entries(await redis.xrange(candidate.deadletter, entry_id, entry_id))
        found += [read_letter(candidate, i, fields) for i, fields in entries]
    if not found:
        raise DeadLetterError(f"no dead letter {entry_id} on {', '.join(c.deadletter for c in candidates)}")
    if len(found) > 1:
        shards = ", ".join(f"{letter.shard.index} ({letter.shard.deadletter})" for letter in found)
        raise DeadLetterError(f"dead letter {entry_id} is on shards {shards}: name its shard")
    return found[0]


async def redrive(redis: Client, keys: Keys, entry_ids: Iterable[str], shard: int | None = None) -> list[Redriven]:
    """Re-publish the dead letters `entry_ids` and delete them.

    Every id is found and checked first, so an unknown, ambiguous or unreadable one writes nothing at all. Then
    each shard's letters go in one script (one per CHUNK letters), which refuses them all if one has meanwhile
    gone (another operator redrove it): only a race like that, with letters on several shards (or more than
    CHUNK), leaves the scripts before the refused one done.
    """
    letters = [await find_letter(redis, keys, entry_id, shard) for entry_id in dict.fromkeys(entry_ids)]
    by_shard: dict[int, list[tuple[DeadLetter, list[bytes]]]] = {}
    for letter in letters:
        by_shard.setdefault(letter.shard.index, []).append((letter, _fields_of(letter)))
    redriven = []
    for index, batch in by_shard.items():
        for start in range(0, len(batch), CHUNK):
            done = await _run(redis, keys.shard(index), batch[start : start + CHUNK], strict=True)
            redriven += [item for item in done if isinstance(item, Redriven)]  # all of them: strict
    return redriven


async def redrive_all(redis: Client, keys: Keys, chunk: int = CHUNK) -> AsyncIterator[Redriven | Skipped]:
    """Re-publish every dead letter there was when it started, shard by shard, `chunk` at a time; yields each.

    Letters that cannot be re-published (unreadable, empty, naming another stream, gone meanwhile) are skipped
    and stay. Letters dead-lettered again meanwhile (their cause was not fixed after all) are left for next time.
    """
    for shard in keys.all_shards:
        last = _entries(await redis.xrevrange(shard.deadletter, count=1))
        if not last:
            continue
        start = b"-"
        while entries := _entries(await redis.xrange(shard.deadletter, start, last[0][0], count=chunk)):
            start = b"(" + entries[-1][0]  # exclusive: after the last one read (a skipped letter stays)
            batch = []
            for letter in (read_letter(shard, entry_id, fields) for entry_id, fields in entries):
                try:
                    batch.append((letter, _fields_of(letter)))
                except DeadLetterError as exc:
                    yield Skipped(letter, str(exc))
            for done in await _run(redis, shard, batch, strict=False):
                yield done


def _entries(reply: Any) -> list[Entry]:
    """XRANGE's reply, typed (redis-py types it loosely); the client reads bytes."""
    return cast("list[Entry]", reply or [])


def _fields_of(letter: DeadLetter) -> list[bytes]:
    """The original entry's field names and values, flat, as they were: refused if there is nothing to write or
    the letter names another stream than its shard's requests stream."""
    message = letter.message
    if message is None:
        raise DeadLetterError(f"dead letter {letter.where} is unreadable ({letter.unreadable}): nothing to re-publish")
    if message.stream != letter.shard.requests:
        raise DeadLetterError(
            f"dead letter {letter.where} names the stream {message.stream!r}, not {letter.shard.requests}: refused"
        )
    flat: list[bytes] = []
    for name, value in message.fields.items():
        flat += (name.encode(errors="surrogatepass"), value.encode(errors="surrogatepass"))
    for name, value in message.binary_fields.items():
        try:
            flat += (name.encode(errors="surrogatepass"), base64.b64decode(value, validate=True))
        except binascii.Error:
            raise DeadLetterError(f"dead letter {letter.where}: binary field {name!r} is not base64") from None
    if not flat:
        raise DeadLetterError(f"dead letter {letter.where} holds no fields (deleted while pending): nothing to write")
    return flat


async def _run(
    redis: Client, shard: ShardKeys, batch: list[tuple[DeadLetter, list[bytes]]], *, strict: bool
) -> list[Redriven | Skipped]:
    """One REDRIVE script for letters of one shard: what became of each (only Redriven ones when strict)."""
    if not batch:
        return []
    args: list[Any] = ["1" if strict else "0"]
    for letter, flat in batch:
        args += [letter.id, letter.data, len(flat) // 2, *flat]
    reply = [
        part.decode() if isinstance(part, bytes) else str(part)
        for part in await redis.register_script(REDRIVE)(keys=[shard.deadletter, shard.requests], args=args)
    ]
    if reply[0] != "ok":
        problem, entry_id = reply
        raise DeadLetterError(
            f"dead letter {entry_id} on {shard.deadletter} {_PROBLEMS[problem]}: none of its batch was redriven"
        )
    return [
        Redriven(letter, shard.requests, new_id)
        if new_id
        else Skipped(letter, f"dead letter {letter.where} went or changed meanwhile")
        for (letter, _), new_id in zip(batch, reply[1:], strict=True)
    ]
