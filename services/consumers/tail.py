"""`fleetgate tail`: a live, readable view of `{prefix}:decisions` (every shard's), one line per decision.

By default a plain XREAD from the streams' ends: it takes nothing from anyone (no group, nothing to acknowledge).
With a group it reads as one consumer of that group (on each shard's stream) and acknowledges every entry it has
handled; it warns of decisions trimmed before the group read them (a gap: the decisions' hard cap was reached while
the group was behind), at start and every GAP_CHECK_S, and counts them (`fleetgate tail` then exits 1).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from rich.console import Console
from rich.text import Text

from schemas.problems import Outcome
from services.keyspace import Keys
from services.redis_client import Client
from services.streams import (
    Entry,
    as_reply,
    claim_idle,
    consumer_name,
    ensure_group,
    forget_dead_consumers,
    last_id,
    sweep_block_ms,
    take_gap,
)

OUTCOME_STYLES = {
    Outcome.ALLOWED: "green",
    Outcome.PERMISSION_DENIED: "yellow",
    Outcome.VEHICLE_NOT_CAPABLE: "magenta",
    Outcome.UNAUTHORIZED: "red",
    Outcome.REJECTED: "bold red",
}
_OUTCOME_WIDTH = max(len(o) for o in Outcome)
CLAIM_IDLE_MS = 60_000
"""With a group: a pending entry idle this long belongs to a dead consumer (a live one acknowledges each read)."""
GAP_CHECK_S = 5.0


@dataclass(frozen=True, slots=True)
class TailOptions:
    outcomes: frozenset[Outcome] = frozenset()
    """Only these outcomes (empty: all)."""
    vehicle: str | None = None
    from_start: bool = False
    """Begin at the stream's first entry (or, for a new group, create it there) instead of its end."""
    group: str | None = None
    count: int | None = None
    """Return after this many matching decisions."""
    batch_size: int = 100
    block_ms: int = 250
    """How long one read waits: also how soon a Ctrl-C is noticed."""

    def matches(self, decision: dict[str, Any]) -> bool:
        if self.outcomes and decision["outcome"] not in self.outcomes:
            return False
        return self.vehicle is None or decision.get("vehicle_id") == self.vehicle


class Printer(Protocol):
    def decision(self, decision: dict[str, Any]) -> None: ...

    def warning(self, message: str) -> None: ...


class LinePrinter:
    """One readable line per decision, coloured when the output is a terminal; warnings on stderr."""

    def __init__(self) -> None:
        # soft_wrap: a long line stays one line (rich would wrap it at the terminal's width, or 80 in a pipe).
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)

    def decision(self, decision: dict[str, Any]) -> None:
        self.out.print(describe(decision))

    def warning(self, message: str) -> None:
        self.err.print(Text(f"warning: {message}", style="yellow"))


class JsonPrinter(LinePrinter):
    """Each decision's JSON object on one line (whatever spacing it was published with), for other programs."""

    def decision(self, decision: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(decision, separators=(",", ":"), ensure_ascii=False) + "\n")
        sys.stdout.flush()  # a pipe is block-buffered: a live view must not wait for 4 KiB


def parse_outcomes(values: Iterable[str]) -> frozenset[Outcome]:
    """Outcome names, any case; a ValueError names the bad one and lists the valid ones."""
    outcomes = set()
    for value in values:
        try:
            outcomes.add(Outcome(value.upper()))
        except ValueError:
            valid = ", ".join(Outcome)
            raise ValueError(f"unknown outcome {value!r}; valid outcomes: {valid}") from None
    return frozenset(outcomes)


def read_decision(fields: dict[bytes, bytes]) -> dict[str, Any]:
    """The decision an entry carries; ValueError says what is wrong with a malformed one."""
    data = fields.get(b"data")
    if data is None:
        raise ValueError("has no `data` field")
    try:
        decision = json.loads(data)
    except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
        raise ValueError(f"has a `data` field that is not JSON ({exc})") from None
    if not isinstance(decision, dict) or not isinstance(decision.get("request_id"), str):
        raise ValueError("has a `data` field that is not a decision (no request_id)")
    if decision.get("outcome") not in set(Outcome):
        raise ValueError(f"has a `data` field that is not a decision (outcome {decision.get('outcome')!r})")
    return decision


def describe(decision: dict[str, Any]) -> Text:
    """`time  OUTCOME  request  vehicle  kind:target  permission  [error type/code: description]`."""
    outcome = Outcome(decision["outcome"])
    style = OUTCOME_STYLES[outcome]
    line = Text()
    line.append(str(decision.get("decided_at", "?")), style="dim")
    line.append("  ")
    line.append(outcome.value.ljust(_OUTCOME_WIDTH), style=style)
    line.append(f"  {decision['request_id']}", style="bold")
    line.append(f"  vehicle={decision.get('vehicle_id') or '-'}")
    line.append(f"  {decision.get('kind') or '?'}:{decision.get('target') or '-'}")
    line.append(f"  permission={decision.get('permission') or '-'}")
    error = decision.get("error")
    if isinstance(error, dict):
        line.append(f"  {error.get('type')}/{error.get('code') or 'null'}: {error.get('description')}", style=style)
    return line


@dataclass
class TailResult:
    shown: int = 0
    """Decisions printed."""
    missed: int = 0
    """With a group: decisions trimmed before the group read them, or deleted while pending."""


async def tail(
    redis: Client, keys: Keys, options: TailOptions, printer: Printer, stopping: asyncio.Event | None = None
) -> TailResult:
    """Print matching decisions until `stopping` is set or `options.count` were printed.

    With several shards it reads their decisions streams in turn, one stream per read (sweep_block_ms): each
    shard's decisions show in order (a vehicle's are all in one shard), the shards' interleave as they come.
    """
    stopping = stopping or asyncio.Event()
    streams = [shard.decisions for shard in keys.all_shards]
    reader = await _open_reader(redis, streams, options)
    result, found = TailResult(), False
    loop = asyncio.get_running_loop()
    checked_at = loop.time()
    result.missed += await reader.check_gaps(printer)

    def finished() -> bool:
        return stopping.is_set() or (options.count is not None and result.shown >= options.count)

    while not finished():
        if loop.time() - checked_at >= GAP_CHECK_S:
            result.missed += await reader.check_gaps(printer)
            checked_at = loop.time()
        block_ms = sweep_block_ms(options.block_ms, len(streams), found=found)
        found = False
        for stream in streams:
            if finished():
                break
            # Never read more than --count still needs: every entry read is then handled (shown or skipped, and
            # in a group acknowledged); none is left pending by an early exit.
            wanted = None if options.count is None else options.count - result.shown
            size = options.batch_size if wanted is None else min(options.batch_size, wanted)
            entries = await reader.read(stream, size, block_ms)
            if entries:
                found = True
                for entry_id, fields in entries:
                    if not fields:  # deleted from the stream while pending (claimed from a dead consumer)
                        printer.warning(f"entry {entry_id.decode()} was deleted before it was shown")
                        result.missed += 1
                        continue
                    result.shown += _show(entry_id, fields, options, printer)
                await reader.handled(stream, entries)
    return result


class _Reader(Protocol):
    async def read(self, stream: str, size: int, block_ms: int | None) -> list[Entry]:
        """Up to `size` entries of `stream` not read before, waiting up to `block_ms` (None: not at all)."""
        ...

    async def handled(self, stream: str, entries: list[Entry]) -> None:
        """Every entry of a read was shown or skipped."""
        ...

    async def check_gaps(self, printer: Printer) -> int:
        """Warn of, and count, decisions trimmed before this reader could read them (0 when it cannot tell)."""
        ...


async def _open_reader(redis: Client, streams: list[str], options: TailOptions) -> _Reader:
    if options.group is not None:
        return await _GroupReader.open(redis, streams, options.group, from_start=options.from_start)
    return await _PlainReader.open(redis, streams, from_start=options.from_start)


class _PlainReader:
    """XREAD: takes nothing from anyone; remembers how far it has read each stream."""

    def __init__(self, redis: Client, positions: dict[str, bytes | str]) -> None:
        self.redis = redis
        self.positions = positions

    @classmethod
    async def open(cls, redis: Client, streams: list[str], *, from_start: bool) -> _PlainReader:
        positions: dict[str, bytes | str] = {}
        for stream in streams:
            positions[stream] = "0-0" if from_start else await last_id(redis, stream)
        return cls(redis, positions)

    async def read(self, stream: str, size: int, block_ms: int | None) -> list[Entry]:
        reply = as_reply(await self.redis.xread({stream: self.positions[stream]}, count=size, block=block_ms))
        return [entry for _, batch in reply for entry in batch]

    async def handled(self, stream: str, entries: list[Entry]) -> None:
        self.positions[stream] = entries[-1][0]

    async def check_gaps(self, printer: Printer) -> int:  # noqa: ARG002  # the protocol's signature
        return 0  # a plain XREAD takes nothing and promises nothing: it shows what is there as it reads


class _GroupReader:
    """XREADGROUP as one consumer of a group (the same group name on every shard's stream); acknowledges.

    At start it takes over what dead consumers of the group left pending longer than CLAIM_IDLE_MS (shown first),
    and deletes those consumers: the contract's consumer recipe.
    """

    def __init__(self, redis: Client, group: str, streams: list[str]) -> None:
        self.redis = redis
        self.group = group
        self.streams = streams
        self.consumer = consumer_name()
        self.claimed: dict[str, list[Entry]] = {}

    @classmethod
    async def open(cls, redis: Client, streams: list[str], group: str, *, from_start: bool) -> _GroupReader:
        reader = cls(redis, group, streams)
        for stream in streams:
            await ensure_group(redis, stream, group, "0" if from_start else "$")
            async for claimed in claim_idle(redis, stream, group, reader.consumer, CLAIM_IDLE_MS):
                reader.claimed.setdefault(stream, []).extend(claimed)
            await forget_dead_consumers(redis, stream, group, CLAIM_IDLE_MS, keep=reader.consumer)
        return reader

    async def read(self, stream: str, size: int, block_ms: int | None) -> list[Entry]:
        backlog = self.claimed.get(stream)
        if backlog:
            entries, self.claimed[stream] = backlog[:size], backlog[size:]
            return entries
        reply = as_reply(
            await self.redis.xreadgroup(self.group, self.consumer, {stream: ">"}, count=size, block=block_ms)
        )
        return [entry for _, batch in reply for entry in batch]

    async def handled(self, stream: str, entries: list[Entry]) -> None:
        await self.redis.xack(stream, self.group, *(entry_id for entry_id, _ in entries))

    async def check_gaps(self, printer: Printer) -> int:
        missed = 0
        for stream in self.streams:
            gap = await take_gap(self.redis, stream, self.group)
            if gap:
                printer.warning(f"{gap} decisions of {stream} were trimmed before group {self.group} read them")
                missed += gap
        return missed


def _show(entry_id: bytes, fields: dict[bytes, bytes], options: TailOptions, printer: Printer) -> bool:
    try:
        decision = read_decision(fields)
    except ValueError as exc:
        printer.warning(f"entry {entry_id.decode()} {exc}; skipped")
        return False
    if not options.matches(decision):
        return False
    printer.decision(decision)
    return True
