"""README.md's commands (`$ ` lines of ```console blocks, the lines up to the next being its output, and the lines of
```bash blocks) are each skipped by a pattern in SKIP, or run: offline ones must print what the README shows; the rest
run in README order on the test's redis-server and key prefix and exit 0, long-running ones until their block ends
(then a SIGTERM). Each is forked from a process with fleetgate imported (a fresh one costs 0.7 s of CPU)."""

import multiprocessing
import os
import re
import shlex
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.context import ForkServerProcess as Process
from pathlib import Path

import pytest

import fleetgate
from devtools.workers import fleetgate_env
from services.keyspace import Keys
from services.local_redis import RedisServer
from services.settings import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
SKIP = {  # a command starting with this pattern is not run here, for this reason
    r"python3 -m venv|\. \.venv/bin/activate|(\.venv/bin/)?pip install": "builds the virtualenv this test runs in",
    r"(\.venv/bin/)?(ruff|mypy|python -m pytest)|bash \.ci/run": "CI's checks, and the suite this test is part of",
    r"(\.venv/bin/)?fleetgate demo|\.venv/bin/python -m bench\.|fleetgate loadtest": "load: 10 s to minutes each",
    r"docker compose|FLEETGATE_REDIS_CLUSTER=true": "needs Docker, or a Redis Cluster at the example addresses",
    r"fleetgate deadletter (show|redrive) [0-9]": "names a dead letter of the example (tests/test_deadletters.py)",
    r"fleetgate serve --with-workers": "starts its own Redis, serves until stopped (tests/http/test_serve_command.py)",
    r"fleetgate vehicles run": "records a fresh world's simulated clock (tests/test_vehicle_scenarios.py plays it)",
}
KINDS = {"skip": "|".join(SKIP), "offline": r"fleetgate (access (derive|parse-scope)|catalog|gatekeeper shards)|echo"}
KINDS["redis"] = r"(fleetgate|faststream|redis-cli) "  # the rest of what they show, in README order
# Long-running commands, to the end of their block:
BACKGROUND = r"fleetgate (gatekeeper run|vehicles serve|(audit|usage) run(?!.*--until-idle)|tail)|faststream run"
BLOCKS = [(m[1], m[2].splitlines()) for m in re.finditer(r"^```(\w*)\n(.*?)^```$", README, re.MULTILINE | re.DOTALL)]
FORKS = multiprocessing.get_context("forkserver")
FORKS.set_forkserver_preload(["fleetgate", __name__])


@dataclass
class Command:
    text: str
    block: int
    shown: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str | None:
        return next((kind for kind, pattern in KINDS.items() if re.match(pattern, self.text)), None)


COMMANDS: list[Command] = []
for number, (language, lines) in enumerate(BLOCKS):
    for line in lines if language == "console" else [f"$ {line}" for line in lines if language == "bash" and line]:
        if line.startswith("$ "):  # less a trailing `# comment`; `a && b` is two commands
            COMMANDS += [Command(part.strip(), number) for part in re.sub(r"\s+#\s.*", "", line[2:]).split(" && ")]
        elif COMMANDS and COMMANDS[-1].block == number:
            COMMANDS[-1].shown.append(line.rstrip())


@dataclass
class Shell:
    """Runs commands in `cwd` with `env`, after replacing what the README shows with this run's (`subs`)."""

    cwd: Path
    env: dict[str, str]
    subs: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def forked(argv: list[str], env: dict[str, str], cwd: Path) -> None:
        """In the forked process: the command in `cwd`, the virtualenv active, printing into the file `cwd`/pid."""
        os.chdir(cwd)
        os.environ.update(env, COLUMNS="120", PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}")
        for fd in (1, 2):
            os.dup2(os.open(str(os.getpid()), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC), fd)
        if argv[0] != "fleetgate":
            os.execvp(argv[0], argv)
        sys.argv = argv
        fleetgate.main()

    def start(self, text: str) -> Process:
        for shown, real in self.subs.items():
            text = text.replace(shown, real)
        argv = shlex.split(re.sub(r" \[--[^]]*\]", "", text))  # an `[--optional part]` left out
        (process := FORKS.Process(target=Shell.forked, args=(argv, self.env, self.cwd), name=text)).start()
        return process

    def output(self, process: Process, timeout: float = 60) -> str:
        process.join(timeout)
        return f"$ {process.name}  (exit {process.exitcode})\n" + (self.cwd / str(process.pid)).read_text()

    def run(self, command: Command, tries: int = 1) -> list[str]:
        """Its printed lines, once it exits; up to `tries` times (0.2 s apart) until it exits 0 and prints."""
        while not re.search(r"\(exit 0\)\n.", out := self.output(self.start(command.text))) and (tries := tries - 1):
            time.sleep(0.2)
        ids = (re.findall(r"\bc-[0-9a-f]{16}\b", text) for text in ("\n".join(command.shown), out))
        self.subs = dict(zip(*ids, strict=False)) | self.subs  # the README's connection ids -> this run's
        return [line.rstrip() for line in out.splitlines()]

    def stop(self, process: Process) -> str:
        """SIGTERM once it (and each process it started) holds a socket: it reached Redis and set its handlers."""
        while process.is_alive() and not all(
            "socket:" in str([os.path.realpath(fd) for fd in Path(f"/proc/{p}/fd").iterdir()])
            for p in Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split() or [str(process.pid)]
        ):
            time.sleep(0.1)
        process.terminate()
        return self.output(process, 30)


def walk(shell: Shell, kind: str) -> None:
    """The commands of this kind, in README order; `echo $?` shows the exit code of the one before it."""
    commands, background = [command for command in COMMANDS if command.kind == kind], list[Process]()
    for command, following in zip(commands, [*commands[1:], Command("", -1)], strict=True):
        if re.match(BACKGROUND, command.text):
            background.append(shell.start(command.text))
        elif command.text != "echo $?":
            header, *real = shell.run(command, tries=150 if background else 1)
            assert header.endswith(f"(exit {following.shown[0] if following.text == 'echo $?' else 0})"), real
            if kind == "offline" and (shown := command.shown):  # a shown line ending in `...` matches its start
                cut = [g[: len(w) - 3] + "..." if w.endswith("...") else g for w, g in zip(shown, real, strict=False)]
                assert cut + real[len(cut) :] == shown, header
        while background and following.block != command.block:  # the block ends
            assert (printed := shell.stop(background.pop())).split("\n")[0].endswith("(exit 0)"), printed


def test_every_command_is_run_or_skipped() -> None:
    assert sum(bool(command.shown) for command in COMMANDS if command.kind == "offline") >= 5
    assert not [c.text for c in COMMANDS if c.kind is None], "README commands not run here: run or SKIP them"
    stale = [pattern for pattern in SKIP if not any(re.match(pattern, command.text) for command in COMMANDS)]
    assert not stale, f"SKIP patterns no README command matches: {stale}"


def test_every_setting_is_documented() -> None:
    assert not [name for name in Settings.model_fields if f"`FLEETGATE_{name.upper()}`" not in README]


def test_offline_commands_print_what_the_readme_shows(tmp_path: Path) -> None:
    walk(Shell(tmp_path, fleetgate_env("redis://127.0.0.1:1/0", "fleetgate")), "offline")  # nothing on port 1


@pytest.mark.redis
@pytest.mark.timeout(120)
def test_redis_commands_run_in_readme_order(tmp_path: Path, redis_server: RedisServer, keys: Keys) -> None:
    (tmp_path / "app.toml").write_text("\n".join(next(lines for language, lines in BLOCKS if language == "toml")))
    subs = {"redis-cli ": f"redis-cli -u {redis_server.url} ", "fleetgate:": f"{keys.prefix}:"}
    try:
        walk(Shell(tmp_path, fleetgate_env(redis_server.url, keys.prefix, block_ms=100), subs), "redis")
    finally:  # what a failure left running
        for process in multiprocessing.active_children():
            process.terminate()
