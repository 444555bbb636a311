"""Every command shown in README.md is run by a test: these tests parse the README and run its commands.

A command is either run here, in one of three scenarios (offline, Redis, benchmarks), or exempted in `EXEMPT`
with the reason and the file that covers it instead. A new README command that is neither fails
`test_every_readme_command_is_run_or_exempted`; so does an exemption that matches no README command.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import pytest
from redis import Redis

from services.keyspace import Keys
from services.local_redis import RedisServer
from services.settings import Settings
from tests.readme_commands import (
    README,
    ROOT,
    Background,
    Command,
    DecisionReplay,
    Shell,
    group_caught_up,
    is_long_running,
    is_worker,
    numbered,
    option,
    optional_variants,
    output_difference,
    readme_blocks,
    readme_commands,
    stop_signal,
    table_labels,
    tail_line_admitted,
    wait_until,
    words,
)

MARKDOWN = README.read_text()
COMMANDS = readme_commands(MARKDOWN)


@dataclass(frozen=True)
class Exemption:
    reason: str
    covered_by: str
    """The file that covers the command instead (a test, or CI's script)."""
    evidence: str
    """Text that file must contain, so that the exemption cannot outlive the coverage."""


CI_RUNS_IT = "CI runs this exact command (.ci/run)"
EXEMPT: dict[str, Exemption] = {
    "python3 -m venv .venv": Exemption(
        "creates the virtualenv these tests run in; " + CI_RUNS_IT, ".ci/run", "python3 -m venv .venv"
    ),
    ".venv/bin/pip install -e .": Exemption(
        "installs the project these tests import (network, minutes); CI installs it with the dev extras",
        ".ci/run",
        "pip install -q -e '.[dev]'",
    ),
    ".venv/bin/pip install -e '.[dev]'": Exemption(
        "installs the project and its test tools (network, minutes); CI does the same",
        ".ci/run",
        "pip install -q -e '.[dev]'",
    ),
    ".venv/bin/fleetgate demo": Exemption(
        "ten seconds of load on 500 vehicles; tests/test_demo.py runs `fleetgate demo` (shorter) on each kind of Redis",
        "tests/test_demo.py",
        '[FLEETGATE, "demo"',
    ),
    "docker compose up --build": Exemption(
        "no Docker engine here; tests/test_stack.py validates the compose file against the Compose specification "
        "and runs each fleetgate service's command as a process",
        "tests/test_stack.py",
        "def test_the_stack_commands_work_together",
    ),
    "fleetgate loadtest ... --external-gatekeeper": Exemption(
        "`...` stands for a load test's options; tests/test_stack.py runs the compose simulator's "
        "`fleetgate loadtest --external-gatekeeper` against two running gatekeepers",
        "tests/test_stack.py",
        'command_and_env("simulator"',
    ),
    "fleetgate loadtest --vehicles 100000 --rate 20000 --duration 60 --producers 2 --workers 2": Exemption(
        "100,000 vehicles at 20,000/s for a minute needs more time and cores than a test has; the README's small "
        "load tests run here, and tests/test_loadtest.py runs the load test's parts",
        "tests/test_loadtest.py",
        "def test_a_short_run_accounts_for_every_request",
    ),
    ".venv/bin/ruff check .": Exemption("lint; " + CI_RUNS_IT, ".ci/run", ".venv/bin/ruff check ."),
    ".venv/bin/ruff format --check .": Exemption("format; " + CI_RUNS_IT, ".ci/run", ".venv/bin/ruff format --check ."),
    ".venv/bin/mypy": Exemption("types (strict); " + CI_RUNS_IT, ".ci/run", ".venv/bin/mypy"),
    ".venv/bin/python -m pytest": Exemption(
        "the whole suite, this test included (it would recurse); " + CI_RUNS_IT,
        ".ci/run",
        ".venv/bin/python -m pytest",
    ),
    '.venv/bin/python -m pytest -m "not cluster"': Exemption(
        "a part of the suite, this test included (it would recurse); CI runs all of it",
        ".ci/run",
        ".venv/bin/python -m pytest",
    ),
    '.venv/bin/python -m pytest -m "not redis"': Exemption(
        "a part of the suite, this test included (it would recurse); CI runs all of it",
        ".ci/run",
        ".venv/bin/python -m pytest",
    ),
    ".venv/bin/python -m bench.gatekeeper": Exemption(
        "a benchmark of about 6 minutes; the gatekeeper it measures is tested by tests/test_gatekeeper.py",
        "tests/test_gatekeeper.py",
        "def test_every_outcome_from_plain_xadd",
    ),
    ".venv/bin/python -m bench.reliability": Exemption(
        "about 5 minutes of crash scenarios, then the reliability suite; the suite runs in CI with the rest",
        "tests/reliability/test_crash.py",
        "def test_five_kill_9s_lose_and_duplicate_nothing",
    ),
    "FLEETGATE_REDIS_CLUSTER=true FLEETGATE_SHARDS=6 FLEETGATE_REDIS_URL=redis://10.0.0.1:7000,10.0.0.2:7000/0 "
    "fleetgate gatekeeper run --shards 0-2": Exemption(
        "needs a Redis Cluster at those addresses; tests/test_gatekeeper_process.py runs `fleetgate gatekeeper run` "
        "on the local cluster with six shards (and tests/test_sharding.py workers on some shards only)",
        "tests/test_gatekeeper_process.py",
        "def test_kill_9_mid_run_loses_and_duplicates_nothing",
    ),
    ".venv/bin/python -m bench.cluster --failover": Exemption(
        "a benchmark of about 8 minutes on two local deployments; what it measures is tested by "
        "tests/cluster/test_failover.py and the cluster runs of tests/test_gatekeeper.py",
        "tests/cluster/test_failover.py",
        "def test_wait_backed_writes_lose_no_request",
    ),
    "bash .ci/run": Exemption(
        "installs redis-server and a fresh virtualenv, then runs every check: it is CI itself",
        ".ci/run",
        "set -euo pipefail",
    ),
}

# README command -> what its output must also contain (most of these show no output in the README).
MUST_PRINT: dict[str, tuple[str, ...]] = {
    "fleetgate catalog signals --group charge --json": ('"group": "charge"',),
    "fleetgate catalog commands": ("22 commands", "set-charge-limit"),
    "fleetgate catalog permissions": ("28 permissions", "control_security"),
    "fleetgate access publish app.toml": ('"scope": "control_security read_battery required:read_odometer"',),
    'fleetgate vehicles add --id veh-1 --make Tesla --model "Model 3" --year 2022 '
    "--powertrain BEV --lacks wheel-tires": (
        '"vehicle_id": "veh-1"',
        '"powertrain": "BEV"',
    ),
    "fleetgate filters set --allow BEV --allow PHEV": ('"BEV",\n    "PHEV"', '"allow_unknown": false'),
    'fleetgate connect reauth c-73892c1f5770b244 --scope "required:read_odometer read_vin"': (
        '"name": "read_vin"',
        '"status": "active"',
    ),
    "fleetgate connect revoke c-73892c1f5770b244": ('"status": "revoked"',),
    "fleetgate connect show c-73892c1f5770b244": ('"status": "revoked"', '"scope": "required:read_odometer read_vin"'),
    "fleetgate gatekeeper check": ("healthy: ",),
    "redis-cli XREVRANGE fleetgate:decisions + - COUNT 1": ('"outcome":"UNAUTHORIZED"',),
    "fleetgate loadtest --vehicles 2000 --rate 2000 --duration 8 --report out/": (
        "lost 0  duplicated 0  mismatched 0",
        "wrote out/report.json",
    ),
    "fleetgate loadtest --vehicles 2000 --rate 2000 --duration 8": (
        "2,000 vehicles, 2,000/s for 8 s",
        "lost 0  duplicated 0  mismatched 0",
    ),
    "fleetgate simulate fleet --vehicles 5000 --seed 7 [--mix my-fleet.toml]": (
        "registered 5000 vehicles (sim-000000 .. sim-004999)",
    ),
    "fleetgate simulate owners --vehicles 5000 --seed 7 --uncheck 0.2": ("owners unchecked something",),
    "fleetgate audit query --db audit.sqlite vehicle sim-000042": ("vehicle sim-000042", "signal:"),
    "fleetgate audit query --db audit.sqlite denials --by permission": ("denials by permission", "read_fuel"),
    "fleetgate audit query --db audit.sqlite consent c-73892c1f5770b244": (
        "connection.created",
        "connection.reauthorized",
        "connection.revoked",
    ),
}

# README command -> why its shown output is a sample: only its table's rows (and MUST_PRINT) are checked.
SAMPLE_OUTPUT = {"fleetgate loadtest --vehicles 2000 --rate 2000 --duration 8": "figures and timings vary run to run"}

OFFLINE = (
    "fleetgate access derive",
    "fleetgate access parse-scope",
    "fleetgate catalog",
    "fleetgate gatekeeper shards",
)


def scenario(command: Command, previous: str | None) -> str | None:
    """Which test runs the command: 'offline', 'redis', 'bench', 'exempt'; None: no test (the rule is broken)."""
    if command.text in EXEMPT:
        return "exempt"
    if command.text == "echo $?":
        return previous
    if command.text.startswith(OFFLINE):
        return "offline"
    if command.text.startswith(".venv/bin/python -m bench."):
        return "bench"
    if command.program in {"fleetgate", "faststream", "redis-cli"}:
        return "redis"
    return None


def scenarios() -> list[tuple[Command, str | None]]:
    classified: list[tuple[Command, str | None]] = []
    for command in COMMANDS:
        classified.append((command, scenario(command, classified[-1][1] if classified else None)))
    return classified


def commands_of(name: str) -> list[Command]:
    return [command for command, where in scenarios() if where == name]


def blocks_of(commands: Sequence[Command]) -> Iterator[list[Command]]:
    for _, block in groupby(commands, key=lambda command: command.block):
        yield list(block)


# --- running: in the foreground ------------------------------------------------------------------------------


def run_foreground(shell: Shell, command: Command, expected_returncode: int = 0) -> None:
    """Run it (each variant of an `[--optional part]`); check its exit code, shown output and MUST_PRINT."""
    if command.text == "echo $?":
        assert command.output == (str(shell.last_returncode),), f"README.md:{command.line}"
        return
    for text in optional_variants(command.text):
        result = shell.run(text)
        where = f"README.md:{command.line}: $ {text}\n{result.stdout}{result.stderr}"
        assert result.returncode == expected_returncode, where
        check_printed(shell, command, result.stdout if result.returncode == 0 else result.stdout + result.stderr, where)


def check_printed(shell: Shell, command: Command, printed: str, where: str) -> None:
    if command.output and command.text in SAMPLE_OUTPUT:
        for label in table_labels(command.output):
            assert f"│ {label} " in printed, f"no {label!r} row: {where}"
    elif command.output:
        difference = output_difference(command.output, printed)
        assert not difference, f"{where}\nREADME.md shows other output:\n{difference}"
    shell.learn_ids(command.output, printed)
    for text in MUST_PRINT.get(command.text, ()):
        assert text in printed, f"{text!r} not printed: {where}"


def run_in_order(shell: Shell, commands: Sequence[Command]) -> None:
    """A block's commands in order; one followed by `echo $?` must exit with the code the README shows."""
    for command, following in zip(commands, [*commands[1:], None], strict=True):
        expected = int(following.output[0]) if following is not None and following.text == "echo $?" else 0
        run_foreground(shell, command, expected)


# --- running: the gatekeeper block (each worker started, probed with the block's other commands, stopped) ----


def run_gatekeeper_block(shell: Shell, commands: Sequence[Command]) -> None:
    workers = [command for command in commands if is_worker(command)]
    probes = [command for command in commands if not is_worker(command)]
    assert not any(is_long_running(probe) for probe in probes), list(numbered(probes))
    check = next(probe for probe in probes if probe.text.startswith("fleetgate gatekeeper check"))
    for number, worker in enumerate(workers):
        assert shell.run(check.text).returncode != 0, "the last worker's heartbeat outlived it"
        running = shell.start(worker)
        request_id = ""
        for probe in probes:
            assert running.process.poll() is None, running.describe()
            request_id = run_probe(shell, probe, int(option(worker, "--workers", "1")), number, request_id)
        assert running.stop(stop_signal(worker)) == 0, running.describe()


def run_probe(shell: Shell, probe: Command, workers: int, number: int, request_id: str) -> str:
    """Run one probe against the workers started; returns the request id a `redis-cli XADD` sent."""
    if probe.text.startswith("fleetgate gatekeeper check"):

        def healthy() -> bool:
            result = shell.run(probe.text)
            return result.returncode == 0 and f"{workers} worker(s)" in result.stdout

        wait_until(healthy, f"`{probe.text}` to see {workers} worker(s)")
    elif probe.text.startswith("redis-cli XADD"):
        # One request id gets one decision: the second and later workers get the README's id with a suffix.
        text = re.sub(r'"request_id":"([^"]+)"', rf'"request_id":"\1.{number}"', probe.text) if number else probe.text
        request_id = re.findall(r'"request_id":"([^"]+)"', text)[0]
        assert shell.run(text).returncode == 0
        return request_id
    elif probe.text.startswith("redis-cli XREVRANGE"):
        decided = f'"request_id":"{request_id}"'
        wait_until(lambda: decided in shell.run(probe.text).stdout, f"a decision on {request_id}")
    run_foreground(shell, probe)
    return request_id


# --- running: the consumers block (live consumers started, fed decisions, checked, stopped) ------------------


def run_consumers_block(shell: Shell, commands: Sequence[Command]) -> None:
    client = Redis.from_url(shell.redis_url, decode_responses=True)
    replay = DecisionReplay(client, f"{shell.prefix}:decisions")
    audited = [f"{shell.prefix}:decisions", f"{shell.prefix}:connection-events"]
    services = [shell.start(command) for command in commands if is_long_running(command)]
    for service in services:
        if service.command.text.startswith("fleetgate tail"):
            wait_for_lines(service, replay)
    for command in commands:
        if is_long_running(command):
            continue
        if command.text.startswith("fleetgate tail"):
            run_counted_tail(shell, command, replay)
            continue
        if command.text.startswith("fleetgate audit query"):
            wait_until(lambda: group_caught_up(client, audited, "audit"), "the audit consumer to catch up")
        run_foreground(shell, command)
    for service in services:
        assert service.stop(stop_signal(service.command)) == 0, service.describe()
        if service.command.text.startswith("fleetgate tail"):
            excluded = [line for line in service.lines() if not tail_line_admitted(service.command, line)]
            assert not excluded, f"$ {service.command.text} printed lines its filters exclude: {excluded[:3]}"
    client.close()


def wait_for_lines(tail: Background, replay: DecisionReplay) -> None:
    """A live tail prints: at once with --from-start, else once new decisions arrive."""
    what = f"`{tail.command.text}` to print"
    if "--from-start" in words(tail.command):
        wait_until(lambda: bool(tail.lines()), what)
    else:
        replay.until(lambda: bool(tail.lines()), what)


def run_counted_tail(shell: Shell, command: Command, replay: DecisionReplay) -> None:
    """`tail --count N` exits after N decisions made after it started, having printed one line each."""
    tail = shell.start(command)
    replay.until(lambda: tail.process.poll() is not None, f"`{command.text}` to exit")
    assert tail.process.returncode == 0, tail.describe()
    assert len(tail.lines()) == int(option(command, "--count")), tail.describe()


# --- the tests -------------------------------------------------------------------------------------------------


@pytest.fixture
def shell(tmp_path: Path, redis_server: RedisServer, keys: Keys) -> Iterator[Shell]:
    """A shell in a fresh directory holding the README's config file, on the test redis-server and key prefix."""
    configs = readme_blocks(MARKDOWN, "toml")
    assert len(configs) == 1, "the README shows one Vehicle Access config: the app.toml it publishes"
    (tmp_path / "app.toml").write_text(configs[0])
    (tmp_path / "my-fleet.toml").write_text((ROOT / "simulator/fleet_mix.toml").read_text())
    running = Shell(tmp_path, redis_server.url, redis_server.port, keys.prefix)
    yield running
    running.close()


def test_every_readme_command_is_run_or_exempted() -> None:
    """Each README command is run by a test below or exempted; no table entry is stale; exemptions are covered."""
    assert len(COMMANDS) > 40
    unowned = [command for command, where in scenarios() if where is None]
    assert not unowned, "README commands no test runs (run them here, or exempt them in EXEMPT):\n" + "\n".join(
        numbered(unowned)
    )
    shown = {command.text for command in COMMANDS}
    for table in (EXEMPT, MUST_PRINT, SAMPLE_OUTPUT):
        stale = set(table) - shown
        assert not stale, f"entries for commands the README no longer shows: {stale}"
    for command, exemption in EXEMPT.items():
        assert exemption.evidence in (ROOT / exemption.covered_by).read_text(), f"nothing covers {command!r}"


def test_every_setting_is_documented() -> None:
    """Every field of services/settings.py appears in the README as its FLEETGATE_ environment variable."""
    assert len(Settings.model_fields) >= 20
    missing = [name for name in Settings.model_fields if f"`FLEETGATE_{name.upper()}`" not in MARKDOWN]
    assert not missing, missing


def test_offline_commands_print_what_the_readme_shows(tmp_path: Path) -> None:
    """The access and catalog commands exit as shown and print exactly what the README shows, without Redis."""
    commands = commands_of("offline")
    assert sum(bool(command.output) for command in commands) >= 5
    offline = Shell(tmp_path, "redis://127.0.0.1:1/0", 1, "fleetgate")  # nothing listens on port 1
    for block in blocks_of(commands):
        run_in_order(offline, block)


@pytest.mark.redis
@pytest.mark.timeout(240)
def test_redis_commands_run_in_readme_order(shell: Shell) -> None:
    """Registry, Connect, gatekeeper, load tests and consumers: every command, in order, on one key prefix."""
    for block in blocks_of(commands_of("redis")):
        if any(is_worker(command) for command in block):
            run_gatekeeper_block(shell, block)
        elif any(command.text.startswith("fleetgate tail") for command in block):
            run_consumers_block(shell, block)
        else:
            assert not any(is_long_running(command) for command in block), list(numbered(block))
            run_in_order(shell, block)
    assert "c-73892c1f5770b244" in shell.ids, "the README's example connection id was never replaced by a real one"
    assert (shell.cwd / "out" / "report.json").exists(), "`--report out/` wrote no report"


@pytest.mark.redis
@pytest.mark.timeout(120)
def test_benchmarks_run(shell: Shell) -> None:
    """The README's quick benchmarks run to the end (side by side) and write their results."""
    benchmarks = [shell.start(command) for command in commands_of("bench")]
    assert benchmarks
    for benchmark in benchmarks:
        assert benchmark.process.wait(100) == 0, benchmark.describe()
        assert "wrote bench/results/" in benchmark.output(), benchmark.describe()
