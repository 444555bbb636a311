"""docs/contract.md and docs/contract/asyncapi.json: current, consistent with the code; the redis-cli session runs."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import shutil
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from devtools.builders import make_connection, make_request, make_vehicle
from fleetgate import app
from fleetgate.contract import ASYNCAPI_FILE, asyncapi_json, contract_files, stale_files
from schemas.contract import json_schema_files
from schemas.decision import Decision, decide
from schemas.messages import MESSAGE_TYPES
from schemas.problems import Outcome
from services.gatekeeper.worker import Gatekeeper
from services.keyspace import Keys
from services.local_redis import RedisServer

DOCS = Path(__file__).resolve().parent.parent / "docs"
CONTRACT_DIR = DOCS / "contract"
GUIDE = (DOCS / "contract.md").read_text(encoding="utf-8")
# The guide's section heading and the AsyncAPI channel of each message type of MESSAGE_TYPES.
SECTIONS = {
    "request": "Request",
    "decision": "Decision",
    "deadletter": "Dead letter",
    "connection-event": "Connection event",
    "response": "Response",
}
CHANNELS = {
    "request": "requests",
    "decision": "decisions",
    "deadletter": "deadletter",
    "connection-event": "connection-events",
    "response": "responses",
}
DOC_PREFIX = "fleetgate:"
Runner = Callable[[], AbstractAsyncContextManager[Gatekeeper]]


def schema_of(message: str) -> dict[str, Any]:
    return dict(json.loads(json_schema_files()[f"{message}.v1.schema.json"]))


def table_after(heading: str) -> list[dict[str, str]]:
    """The first markdown table after `heading` in the guide, as rows of header -> cell (backticks stripped)."""
    lines = GUIDE.split("\n")
    start = lines.index(heading)
    rows: list[list[str]] = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line.strip()[1:-1])
            rows.append([cell.strip().replace("\\|", "|") for cell in cells])
        elif rows:
            break
    header, _separator, *body = rows
    return [{name: cell.strip("`") for name, cell in zip(header, row, strict=True)} for row in body]


def console_session() -> list[tuple[list[str], list[str]]]:
    """Each `$ redis-cli ...` line of the guide's console blocks, split as a shell would, with the output shown."""
    session: list[tuple[list[str], list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", GUIDE, flags=re.DOTALL):
        for line in block.splitlines():
            if line.startswith("$ redis-cli "):
                session.append((shlex.split(line[2:], comments=True), []))
            elif session and not line.startswith("$ "):
                session[-1][1].append(line)
    return session


def decision_in(lines: list[str]) -> dict[str, Any]:
    """The decision JSON among redis-cli --raw output lines."""
    found = [json.loads(line) for line in lines if line.startswith("{")]
    assert found, f"no decision JSON in {lines!r} (read with --raw)"
    return dict(found[0])


def resolve(document: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return dict(node)


def test_checked_in_contract_files_are_current() -> None:
    """docs/contract/ holds exactly what `fleetgate contract export` generates, asyncapi.json included."""
    assert stale_files(CONTRACT_DIR, contract_files()) == []
    assert (CONTRACT_DIR / ASYNCAPI_FILE).read_text(encoding="utf-8") == asyncapi_json()


def test_asyncapi_document_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The generated document uses the default prefix and Redis URL, whatever FLEETGATE_* says."""
    monkeypatch.setenv("FLEETGATE_KEY_PREFIX", "elsewhere")
    monkeypatch.setenv("FLEETGATE_REDIS_URL", "redis://secret:pw@10.1.2.3:6390/4")
    text = asyncapi_json()
    assert text == (CONTRACT_DIR / ASYNCAPI_FILE).read_text(encoding="utf-8")
    assert "elsewhere" not in text
    assert "secret" not in text


def test_export_check_names_a_stale_asyncapi_file(tmp_path: Path) -> None:
    """`export --check` exits 1 naming asyncapi.json once it differs; `export` rewrites it."""
    runner = CliRunner()
    assert runner.invoke(app, ["contract", "export", "--out", str(tmp_path)]).exit_code == 0
    (tmp_path / ASYNCAPI_FILE).write_text("{}\n", encoding="utf-8")
    result = runner.invoke(app, ["contract", "export", "--out", str(tmp_path), "--check"])
    assert result.exit_code == 1
    assert ASYNCAPI_FILE in result.stderr
    assert "schema.json" not in result.stderr
    assert runner.invoke(app, ["contract", "export", "--out", str(tmp_path)]).exit_code == 0
    assert (tmp_path / ASYNCAPI_FILE).read_text(encoding="utf-8") == asyncapi_json()


def test_every_message_type_has_a_channel_and_a_section() -> None:
    """No message type of the contract is missing from the AsyncAPI checks or the guide's checks."""
    assert set(CHANNELS) == set(SECTIONS) == set(MESSAGE_TYPES)


@pytest.mark.parametrize("message", CHANNELS)
def test_asyncapi_names_each_stream_with_its_message_schema(message: str) -> None:
    """Each of the four streams is a channel at its address, whose payload has the contract's fields."""
    document = json.loads(asyncapi_json())
    assert set(document["channels"]) == set(CHANNELS.values())
    channel = document["channels"][CHANNELS[message]]
    assert channel["address"] == DOC_PREFIX + CHANNELS[message]
    (ref,) = (m["$ref"] for m in channel["messages"].values())
    payload = resolve(document, resolve(document, ref)["payload"]["$ref"])
    assert set(payload["properties"]) == set(schema_of(message)["properties"])
    assert set(payload["required"]) == set(schema_of(message)["required"])


@pytest.mark.parametrize("message", SECTIONS)
def test_guide_lists_every_field_of_each_message(message: str) -> None:
    """The guide's field table of each message names exactly the JSON Schema's properties."""
    fields = [row["field"] for row in table_after(f"## {SECTIONS[message]}")]
    assert sorted(fields) == sorted(schema_of(message)["properties"])


def test_guide_request_table_says_which_fields_are_required() -> None:
    """The request table's `required` column agrees with the request schema."""
    required = {row["field"] for row in table_after("## Request") if row["required"] == "yes"}
    assert required == set(schema_of("request")["required"])


def test_guide_error_table_matches_the_error_schema() -> None:
    """The error object's table names exactly the Smartcar error fields of the decision schema."""
    fields = {row["field"] for row in table_after("### The error object")}
    assert fields == set(schema_of("decision")["$defs"]["SmartcarError"]["properties"])


def test_guide_outcome_table_matches_decide() -> None:
    """The outcomes table lists the outcomes in precedence order with the error decide() gives each."""
    bev, request = make_vehicle(), make_request
    examples: dict[Outcome, list[Decision]] = {
        Outcome.REJECTED: [
            decide(request("warp-drive"), make_connection("read_fuel"), bev),
            decide(
                request("set-charge-limit", "command", params={"percent": 101}), make_connection("control_charge"), bev
            ),
        ],
        Outcome.UNAUTHORIZED: [decide(request("odometer-traveleddistance"), None, bev)],
        Outcome.VEHICLE_NOT_CAPABLE: [
            decide(request("internalcombustionengine-fuellevel"), make_connection("read_fuel"), bev)
        ],
        Outcome.PERMISSION_DENIED: [
            decide(request("tractionbattery-stateofcharge"), make_connection("read_odometer"), bev)
        ],
        Outcome.ALLOWED: [decide(request("tractionbattery-stateofcharge"), make_connection("read_battery"), bev)],
    }
    rows = table_after("## Outcomes and their precedence")
    assert [row["outcome"] for row in rows] == list(Outcome)
    for row in rows:
        kind, _, codes = row["error type / code"].partition(" / ")
        for decision in examples[Outcome(row["outcome"])]:
            assert decision.outcome == row["outcome"]
            problem = decision.problem
            if problem is None:
                assert (kind, row["HTTP"]) == ("none", "200")
                continue
            assert (problem.type, str(problem.status_code)) == (kind, row["HTTP"])
            assert str(problem.code).replace("None", "null") in codes.split(" or ")
            assert str(problem.resolution).replace("None", "null") == row["resolution"]


async def test_guide_redis_cli_session_runs(redis_server: RedisServer, keys: Keys, running_later: Runner) -> None:
    """Every `$ redis-cli` line of the guide runs against a live gatekeeper; reads return the doc's decision."""
    binary = shutil.which("redis-cli")
    assert binary is not None, "redis-cli is not on PATH"
    session = console_session()
    (xadd,) = (argv for argv, _ in session if "XADD" in argv)
    request_id = json.loads(xadd[xadd.index("data") + 1])["request_id"]
    reads = 0
    async with running_later():
        for argv, shown in session:
            # The doc shows the default prefix; this test's gatekeeper and streams live under a per-test one.
            args = [f"{keys.prefix}:{a.removeprefix(DOC_PREFIX)}" if a.startswith(DOC_PREFIX) else a for a in argv[1:]]
            process = await asyncio.create_subprocess_exec(
                binary,
                "-e",
                "-p",
                str(redis_server.port),
                *args,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(process.communicate(), timeout=15)
            assert (process.returncode, err.decode()) == (0, ""), shlex.join(argv)
            if not {"XREAD", "XREADGROUP"} & set(argv):
                continue
            reads += 1
            decision, expected = decision_in(out.decode().splitlines()), decision_in(shown)
            assert decision["request_id"] == expected["request_id"] == request_id
            assert decision["outcome"] == expected["outcome"]
            assert decision.keys() == expected.keys()
    assert reads == 2  # the doc reads the decision once with a group, once without
