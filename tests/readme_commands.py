"""README.md's commands: parsed from its fenced blocks, and run as processes the way a reader would type them.

Parsing: in ```console blocks each `$ ` line is a command and the lines up to the next one are its shown output;
in ```bash blocks each non-empty, non-comment line is a command. Trailing `# comments` are dropped and `a && b`
chains become separate commands.

Running: `fleetgate`, `faststream` and `.venv/bin/X` are this virtualenv's programs, `redis-cli` talks to the test's
redis-server, and the README's `fleetgate:` key prefix becomes the test's own. Example ids the README shows are
replaced by the ones the run produced (see `Shell.learn_ids`).
"""

from __future__ import annotations

import difflib
import itertools
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
VENV_BIN = Path(sys.executable).parent
CONNECTION_ID = re.compile(r"\bc-[0-9a-f]{16}\b")
TIMESTAMP = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\b")

# --- parsing ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A fenced block: its language and its lines, numbered as in the README."""

    language: str
    lines: tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class Command:
    """One command the README shows, with the output shown after it (console blocks only)."""

    text: str
    line: int
    block: int
    output: tuple[str, ...] = ()

    @property
    def program(self) -> str:
        return self.text.split()[0]


def fenced_blocks(markdown: str) -> list[Block]:
    """Every ``` block of the document, in order."""
    blocks: list[Block] = []
    language: str | None = None
    lines: list[tuple[int, str]] = []
    for number, line in enumerate(markdown.splitlines(), start=1):
        if line.startswith("```"):
            if language is None:
                language, lines = line[3:].strip(), []
            else:
                blocks.append(Block(language, tuple(lines)))
                language = None
        elif language is not None:
            lines.append((number, line))
    assert language is None, "README.md has an unclosed ``` block"
    return blocks


def strip_comment(line: str) -> str:
    """The line without a trailing `# comment` (a `#` inside quotes, or not after a space, is kept)."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip()
    return line.rstrip()


def split_chain(text: str) -> list[str]:
    """`a && b` as [a, b]."""
    return [part.strip() for part in text.split(" && ")]


def block_commands(block: Block, index: int) -> list[Command]:
    """The commands of one console or bash block (none for other languages)."""
    commands: list[Command] = []
    if block.language == "console":
        for number, line in block.lines:
            if line.startswith("$ "):
                commands += [Command(part, number, index) for part in split_chain(strip_comment(line[2:]))]
            elif commands:
                last = commands[-1]
                commands[-1] = Command(last.text, last.line, index, (*last.output, line))
    elif block.language == "bash":
        for number, line in block.lines:
            text = strip_comment(line)
            if text:
                commands += [Command(part, number, index) for part in split_chain(text)]
    return commands


def readme_commands(markdown: str) -> list[Command]:
    """Every command the README shows, in order."""
    return [command for index, block in enumerate(fenced_blocks(markdown)) for command in block_commands(block, index)]


def readme_blocks(markdown: str, language: str) -> list[str]:
    """The contents of every block in `language` (e.g. the TOML config the CLI examples read)."""
    blocks = [block for block in fenced_blocks(markdown) if block.language == language]
    return ["\n".join(line for _, line in block.lines) + "\n" for block in blocks]


def optional_variants(text: str) -> list[str]:
    """`cmd [--opt x]` as the command without and with its optional part."""
    optional = re.compile(r"\s\[(-[^\]]*)\]")
    if not optional.search(text):
        return [text]
    return [optional.sub("", text), optional.sub(r" \1", text)]


def table_labels(lines: Sequence[str]) -> list[str]:
    """The first cell of each row of a rich box table (`│ label │ ...`), continuation rows skipped."""
    cells = [line.split("│")[1].strip() for line in lines if line.startswith("│")]
    return [cell for cell in cells if cell]


# --- comparing -------------------------------------------------------------------------------------------------


def masked(text: str) -> list[str]:
    """Lines without trailing whitespace or trailing empty lines, connection ids and timestamps masked."""
    text = TIMESTAMP.sub("<time>", CONNECTION_ID.sub("<connection-id>", text))
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def output_difference(shown: Sequence[str], real: str) -> str:
    """'' when the real output is what the README shows, else a diff; a shown line ending in `...` is a prefix."""
    expected, actual = masked("\n".join(shown)), masked(real)
    same = len(expected) == len(actual) and all(
        want == got or (want.endswith("...") and got.startswith(want[:-3]))
        for want, got in zip(expected, actual, strict=True)
    )
    if same:
        return ""
    return "\n".join(difflib.unified_diff(expected, actual, "README.md", "real output", lineterm=""))


# --- what kind of command: decided from its words -------------------------------------------------------------


def words(command: Command) -> list[str]:
    return command.text.split()


def option(command: Command, name: str, default: str = "") -> str:
    """The value of the first `--name value` in the command, else `default`."""
    parts = words(command)
    return parts[parts.index(name) + 1] if name in parts else default


def options(command: Command, name: str) -> list[str]:
    """The values of every `--name value` in the command."""
    parts = words(command)
    return [value for flag, value in itertools.pairwise(parts) if flag == name]


def is_worker(command: Command) -> bool:
    return command.text.startswith(("fleetgate gatekeeper run", "faststream run"))


def is_long_running(command: Command) -> bool:
    """Runs until a signal: workers, the audit consumer without --until-idle, tail without --count."""
    return (
        is_worker(command)
        or (command.text.startswith("fleetgate audit run") and "--until-idle" not in words(command))
        or (command.text.startswith("fleetgate tail") and "--count" not in words(command))
    )


def stop_signal(command: Command) -> int:
    """Ctrl-C for what a reader runs in a terminal; SIGTERM for what a container runtime stops."""
    return signal.SIGINT if command.text.startswith(("faststream", "fleetgate tail")) else signal.SIGTERM


def tail_line_admitted(command: Command, line: str) -> bool:
    """Whether a `fleetgate tail` line shows only what the command's --outcome and --vehicle filters admit."""
    outcomes = options(command, "--outcome")
    if outcomes and not any(f'"{outcome}"' in line or f" {outcome} " in line for outcome in outcomes):
        return False
    vehicle = option(command, "--vehicle")
    return not vehicle or f'"vehicle_id":"{vehicle}"' in line or f"vehicle={vehicle}" in line


# --- running ---------------------------------------------------------------------------------------------------


@dataclass
class Background:
    """A long-running command, its output going to a file that can be read while it runs."""

    command: Command
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def output(self) -> str:
        return self.stdout.read_text(errors="replace")

    def lines(self) -> list[str]:
        return [line for line in self.output().splitlines() if line.strip()]

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Send `signum` and wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.process.wait(timeout)

    def describe(self) -> str:
        return f"$ {self.command.text}\n{self.output()}{self.stderr.read_text(errors='replace')}"


@dataclass
class Shell:
    """Runs README commands in `cwd` against one redis-server and key prefix, as a reader's shell would."""

    cwd: Path
    redis_url: str
    redis_port: int
    prefix: str
    ids: dict[str, str] = field(default_factory=dict)
    """Example ids the README shows -> the ids this run produced."""
    started: list[Background] = field(default_factory=list)
    last_returncode: int | None = None

    @property
    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("FLEETGATE_")}
        env |= {"FLEETGATE_REDIS_URL": self.redis_url, "FLEETGATE_KEY_PREFIX": self.prefix, "COLUMNS": "120"}
        env["PYTHONPATH"] = str(ROOT)  # `python -m bench.*` from the checkout, as in the repository root
        return env

    def argv(self, text: str) -> list[str]:
        """The command as a process argument list, with this run's ids, programs, server and key prefix."""
        for example, real in self.ids.items():
            text = text.replace(example, real)
        program, *args = shlex.split(text)
        if program == "redis-cli":
            args = [arg.replace("fleetgate:", f"{self.prefix}:") for arg in args]
            return ["redis-cli", "-p", str(self.redis_port), *args]
        if program.startswith(".venv/bin/"):
            program = program.removeprefix(".venv/bin/")
        if (VENV_BIN / program).exists():
            return [str(VENV_BIN / program), *args]
        return [program, *args]

    def run(self, text: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.argv(text), cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        self.last_returncode = result.returncode
        return result

    def start(self, command: Command, text: str | None = None) -> Background:
        """Start a long-running command in the background."""
        name = f"bg-{len(self.started)}"
        stdout, stderr = self.cwd / f"{name}.out", self.cwd / f"{name}.err"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(
                self.argv(text or command.text), cwd=self.cwd, env=self.env, stdout=out, stderr=err
            )
        background = Background(command, process, stdout, stderr)
        self.started.append(background)
        return background

    def learn_ids(self, shown: Sequence[str], real: str) -> None:
        """Remember that the connection ids the README shows stand for the ones this run printed, in order."""
        examples, actuals = CONNECTION_ID.findall("\n".join(shown)), CONNECTION_ID.findall(real)
        for example, actual in zip(examples, actuals[: len(examples)], strict=False):
            self.ids.setdefault(example, actual)

    def close(self) -> None:
        """Kill whatever a failed test left running."""
        for background in self.started:
            if background.process.poll() is None:
                background.process.kill()
                background.process.wait(10)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30, interval: float = 0.1) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(interval)


def numbered(commands: Sequence[Command]) -> Iterator[str]:
    """`README.md:LINE: command` for messages."""
    for command in commands:
        yield f"README.md:{command.line}: {command.text}"


class DecisionReplay:
    """Publishes the latest decisions again (as the gatekeeper did), for consumers that read only new ones."""

    def __init__(self, client: Redis, stream: str) -> None:
        self.client, self.stream = client, stream
        entries = cast(list[tuple[str, dict[Any, Any]]], client.xrevrange(stream, count=200))
        self.batch = [fields for _, fields in entries]
        assert self.batch, f"no decisions on {stream} to replay"

    def until(self, condition: Callable[[], bool], what: str) -> None:
        """Publish a batch of 50 every 0.3 s until `condition` holds."""

        def publish_and_check() -> bool:
            for fields in self.batch[:50]:
                self.client.xadd(self.stream, fields)
            return condition()

        wait_until(publish_and_check, what, interval=0.3)


def group_caught_up(client: Redis, streams: Sequence[str], group: str) -> bool:
    """The consumer group has read and acknowledged everything on each of the streams."""
    for stream in streams:
        state = next((entry for entry in client.xinfo_groups(stream) if entry["name"] == group), None)
        if state is None or state["pending"] or state["lag"] != 0:
            return False
    return True
