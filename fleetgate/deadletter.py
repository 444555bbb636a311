"""`fleetgate deadletter`: look at the entries the gatekeeper gave up on; re-publish them once the cause is fixed."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

from fleetgate._output import fail, print_json, reporting_errors
from fleetgate._registry import RedisUrlOption, run
from services.deadletters import DeadLetter, Redriven, find_letter, list_letters, redrive, redrive_all
from services.registry import Registry

app = typer.Typer(
    help="Dead letters: entries the gatekeeper gave up on; list, show, and redrive them once the cause is fixed.",
    no_args_is_help=True,
)

ShardOption = Annotated[
    int | None,
    typer.Option("--shard", help="The shard the dead letter is on (default: whichever holds it).", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
REASON_WIDTH = 60


def letter_json(letter: DeadLetter) -> dict[str, Any]:
    """A dead letter as `--json` prints it: where it is, its request id, and its message (null if unreadable)."""
    return {
        "id": letter.id,
        "shard": letter.shard.index,
        "stream": letter.shard.deadletter,
        "request_id": letter.request_id,
        "message": letter.message.model_dump(mode="json") if letter.message else None,
        "unreadable": letter.unreadable,
    }


def shorten(text: str, width: int = REASON_WIDTH) -> str:
    """One line of at most `width` characters, an ellipsis where it was cut."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


@app.command("list")
def list_command(
    limit: Annotated[int, typer.Option("--limit", help="Show at most this many.", min=1)] = 50,
    oldest: Annotated[bool, typer.Option("--oldest", help="Oldest first (default: newest first).")] = False,
    as_json: JsonOption = False,
    redis_url: RedisUrlOption = None,
) -> None:
    """The dead letters of every shard, newest first."""

    async def letters(registry: Registry) -> list[DeadLetter]:
        return await list_letters(registry.redis, registry.keys, limit=limit, newest_first=not oldest)

    with reporting_errors():
        found = run(redis_url, letters, refuse_evicting=False)
    if as_json:
        print_json([letter_json(letter) for letter in found])
        return
    if not found:
        typer.echo("no dead letters")
        return
    rows = []
    for letter in found:
        message = letter.message
        if message is None:
            details = ["", "", "", f"unreadable: {letter.unreadable}"]
        else:
            reason = message.reason.partition("; last failure: ")[2] or message.reason
            dead_at = message.dead_at.isoformat(timespec="seconds").replace("+00:00", "Z")
            details = [letter.request_id or "", str(message.deliveries), dead_at, reason]
        rows.append([letter.id, letter.shard.deadletter, *details[:3], shorten(details[3])])
    print_table(["id", "stream", "request_id", "deliveries", "dead at", "reason"], rows)


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """A table whose columns but the last are never cut (ids are copied from it): the last shares what is left."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    columns = [Column(header, no_wrap=True, min_width=width) for header, width in zip(headers, widths, strict=True)]
    columns[-1] = Column(headers[-1], ratio=1)
    table = Table(*columns, box=None)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))  # Text: what a letter holds is never read as markup
    console = Console()
    needed = sum(widths[:-1]) + 2 * len(widths) + 20
    (console if console.width >= needed else Console(width=needed)).print(table)


@app.command("show")
def show_command(
    entry_id: Annotated[str, typer.Argument(metavar="ID", help="The dead letter's entry id.", show_default=False)],
    shard: ShardOption = None,
    as_json: JsonOption = False,
    redis_url: RedisUrlOption = None,
) -> None:
    """One dead letter, with the original entry's fields."""

    async def letter(registry: Registry) -> DeadLetter:
        return await find_letter(registry.redis, registry.keys, entry_id, shard)

    with reporting_errors():
        found = run(redis_url, letter, refuse_evicting=False)
    if as_json:
        print_json(letter_json(found))
        return
    rows = [("dead letter", found.where)]
    message = found.message
    if message is None:
        rows += [("unreadable", found.unreadable or ""), ("data", (found.data or b"").decode(errors="replace"))]
    else:
        rows += [
            ("request_id", found.request_id or "(none readable)"),
            ("original entry", f"{message.entry_id} on {message.stream}"),
            ("deliveries", str(message.deliveries)),
            ("dead at", message.dead_at.isoformat().replace("+00:00", "Z")),
            ("reason", message.reason),
        ]
        rows += [(f"field {name}", value) for name, value in message.fields.items()]
        rows += [(f"field {name} (base64)", value) for name, value in message.binary_fields.items()]
    table = Table(box=None, show_header=False)
    for name, value in rows:
        table.add_row(name, Text(value))
    Console().print(table)


@app.command("redrive")
def redrive_command(
    entry_ids: Annotated[
        list[str] | None, typer.Argument(metavar="[ID]...", help="Dead letters to re-publish.", show_default=False)
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Re-publish every dead letter of every shard.")] = False,
    shard: ShardOption = None,
    redis_url: RedisUrlOption = None,
) -> None:
    """Re-publish dead letters to the requests stream they came from (a new entry id) and delete them, each in one
    step. Named ones all or none: an unknown id writes nothing. A request already decided is not decided again."""
    if every == bool(entry_ids):
        fail("dead-letter ids or --all, not both" if every else "name the dead-letter ids to redrive, or --all")
    if every and shard is not None:
        fail("--shard names the shard of the ids given; --all takes every shard")

    async def work(registry: Registry) -> int:
        if not every:
            done = await redrive(registry.redis, registry.keys, entry_ids or [], shard)
            for redriven in done:
                _print_redriven(redriven)
            return len(done)
        count = 0  # a count, not a list: --all keeps its memory bounded whatever the backlog
        async for item in redrive_all(registry.redis, registry.keys):
            if isinstance(item, Redriven):
                _print_redriven(item)
                count += 1
            else:
                typer.echo(f"skipped: {item.reason}", err=True)  # the reason names the letter
        return count

    with reporting_errors():
        count = run(redis_url, work)
    typer.echo(f"re-published {count} dead letter(s)")


def _print_redriven(item: Redriven) -> None:
    typer.echo(f"{item.letter.where} -> {item.stream} {item.entry_id}")
