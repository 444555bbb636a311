"""Fuzzing the parsers with hypothesis (fast, no Redis): intake, scope, config file and the CLI that wraps them.

Each must answer any input with a result or the project's documented error, never anything else.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from typer.testing import CliRunner

from fleetgate import app
from schemas.catalog import get_catalog
from schemas.decision import decide
from schemas.errors import FleetgateError, ScopeError
from schemas.outbound import Rejection, encode_decision, encode_rejection
from schemas.request_decoder import Request
from schemas.scope import parse_scope
from services.errors import ServiceError
from services.gatekeeper.intake import read_entry
from services.registry.config_file import parse_config
from tests.reliability.conftest import valid_json

pytestmark = [pytest.mark.reliability]

CATALOG = get_catalog()
SIGNALS = [s.code for s in CATALOG.signals]
PERMISSIONS = list(CATALOG.permission_names)
FIELDS = ["v", "request_id", "connection_id", "vehicle_id", "kind", "target", "issued_at", "params"]
MAX_PAYLOAD = 65_536  # the product default, which the worker runs with

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
REQUEST_FIELDS = st.dictionaries(st.sampled_from([*FIELDS, "scopes", "x"]), JSON_VALUES | st.sampled_from(SIGNALS))


def mangled(data: bytes, cut: int, insert: bytes) -> bytes:
    cut %= len(data) + 1
    return data[:cut] + insert + data[cut:]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=300),
        REQUEST_FIELDS.map(lambda body: json.dumps(body).encode("utf-8", "surrogatepass")),
        st.builds(mangled, st.just(valid_json("h")), st.integers(0, 300), st.binary(min_size=1, max_size=8)),
    )
)
@example(b'{"request_id": "\\ud800", "kind": 1}')
@example(b'{"request_id": "ok", "target": "x\\udc80", "kind": 1}')
@example(b"[" * 5000 + b"]" * 5000)
def test_intake_turns_any_bytes_into_an_encodable_decision(data: bytes) -> None:
    """Whatever the bytes, intake never raises and the decision it leads to encodes as one UTF-8 JSON object."""
    intake = read_entry(b"1-1", {b"data": data}, MAX_PAYLOAD)
    if isinstance(intake, Rejection):
        encoded = encode_rejection(intake, "d-1", "2026-11-28T12:00:00Z", "1-1")
    else:
        assert isinstance(intake, Request)
        encoded = encode_decision(decide(intake, None, None), intake, "d-1", "2026-11-28T12:00:00Z", "1-1")
    decision = json.loads(encoded.decode("utf-8"))
    assert decision["request_id"] in (intake.request_id, "unreadable:1-1")
    assert decision["outcome"] in ("REJECTED", "UNAUTHORIZED")


SCOPE_TOKENS = st.sampled_from([*PERMISSIONS, "required:", "required:read_fuel", "REQUIRED:read_fuel", "read_", ""])
SCOPES = st.one_of(
    st.text(max_size=200),
    st.lists(SCOPE_TOKENS | st.text(max_size=12), max_size=8).map(" ".join),
    st.lists(SCOPE_TOKENS, min_size=1, max_size=6).map("\t\u3000\n".join),
)


@settings(max_examples=500, deadline=None)
@given(SCOPES)
def test_scope_parser_returns_permissions_or_scope_error(scope: str) -> None:
    """parse_scope on any text returns catalog permissions or raises ScopeError naming a token of the input."""
    permissions, error = None, None
    try:
        permissions = parse_scope(scope)
    except ScopeError as exc:
        error = exc
    if error is not None:
        assert error.token is None or error.token in scope.split()
        assert "Valid permissions:" in str(error)
        return
    assert permissions is not None
    assert permissions.items()
    assert {item["name"] for item in permissions.items()} <= set(PERMISSIONS)


CONFIG_KEYS = ["signals", "commands", "version", "code", "name", "required", "extra"]
CONFIG_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.sampled_from([*SIGNALS[:10], "lock", "warp"]) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(CONFIG_KEYS), children),
    max_leaves=25,
)
CONFIG_TEXTS = st.one_of(
    st.tuples(st.text(max_size=300), st.booleans()),
    st.tuples(CONFIG_VALUES.map(json.dumps), st.just(True)),
    st.tuples(st.integers(1, 50_000).map(lambda depth: "[" * depth + "]" * depth), st.just(True)),
    st.tuples(st.integers(1, 50_000).map(lambda depth: "a = " + "[" * depth + "]" * depth), st.just(False)),
    st.tuples(st.integers(1, 5_000).map(lambda depth: "x = " + "{y = " * depth + "1" + "}" * depth), st.just(False)),
    st.tuples(
        st.lists(st.sampled_from(['[[signals]]', 'code = "odometer-traveleddistance"', "required = true",
                                  "[[commands]]", 'name = "lock"', "version = 3", "[x", '"\\ud800"', "= 1"]),
                 max_size=8).map("\n".join),
        st.just(False),
    ),
)  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CONFIG_TEXTS)
@example(("[" * 100_000, True))
@example(("a = " + "[" * 100_000, False))
def test_config_parser_raises_only_reported_errors(case: tuple[str, bool]) -> None:
    """parse_config on any text returns a config or raises an error the CLI reports (never e.g. RecursionError)."""
    text, as_json = case
    config, error = None, None
    try:
        config = parse_config(text, as_json=as_json)
    except (FleetgateError, ServiceError, ValidationError) as exc:
        error = exc
    if error is not None:
        assert str(error)
        return
    assert config is not None
    assert config.version is None


runner = CliRunner()
CLI_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=80)


# The CLI tests check the reporting around the parsers (one `error:` line, exit 2, no traceback); the parsers
# themselves get hundreds of examples above, so fewer suffice here (each is a whole CLI invocation).
@settings(max_examples=50, deadline=None)
@given(st.one_of(CLI_TEXT, st.lists(SCOPE_TOKENS, max_size=5).map(" ".join)))
def test_cli_parse_scope_exits_0_or_2_with_a_clear_error(scope: str) -> None:
    """`fleetgate access parse-scope <any text>`: exit 0 with JSON, or 2 with `error:` on stderr; no traceback."""
    result = runner.invoke(app, ["access", "parse-scope", "--", scope])
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if result.exit_code == 0:
        assert json.loads(result.stdout)["permissions"]
    else:
        assert result.stderr.startswith("error: ")


@settings(max_examples=40, deadline=None)
@given(CLI_TEXT.filter(lambda text: not text.startswith("-")))
def test_cli_derive_exits_0_or_2_with_a_clear_error(code: str) -> None:
    """`fleetgate access derive --signal <any text>`: exit 0 or 2 with `error:` on stderr; no traceback."""
    result = runner.invoke(app, ["access", "derive", "--signal", code])
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == 0 or result.stderr.startswith("error: ")
