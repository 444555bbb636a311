"""The `fleetgate` CLI: JSON on stdout, errors on stderr with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleetgate import app
from schemas.messages import MESSAGE_TYPES

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_access_derive_seed_example() -> None:
    """The README's example: three signals give read_battery, read_charge, read_odometer."""
    code, out, err = _run(
        "access",
        "derive",
        "--signal",
        "tractionbattery-stateofcharge",
        "--signal",
        "charge-detailedchargingstatus",
        "--signal",
        "odometer-traveleddistance",
    )
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "permissions": [
            {"name": "read_battery", "required": False},
            {"name": "read_charge", "required": False},
            {"name": "read_odometer", "required": False},
        ],
        "scope": "read_battery read_charge read_odometer",
    }


def test_access_derive_with_required_and_commands() -> None:
    """--required marks the permission of a selected signal or command required."""
    code, out, _ = _run("access", "derive", "-s", "odometer-traveleddistance", "-c", "lock", "-r", "lock")
    assert code == 0
    assert json.loads(out)["scope"] == "required:control_security read_odometer"


def test_access_parse_scope() -> None:
    """parse-scope prints the permissions with their required flags."""
    code, out, _ = _run("access", "parse-scope", "required:read_odometer read_battery read_odometer")
    assert code == 0
    assert json.loads(out) == {
        "permissions": [
            {"name": "read_battery", "required": False},
            {"name": "read_odometer", "required": True},
        ]
    }


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["access", "parse-scope", "read_odometr"], "'read_odometr'"),
        (["access", "parse-scope", ""], "empty scope"),
        (["access", "derive", "--signal", "odometer-distance"], "unknown signal 'odometer-distance'"),
        (["access", "derive", "--command", "lock", "--required", "unlock"], "marked required but not selected"),
        (["access", "derive"], "select at least one"),
        (["catalog", "signals", "--permission", "read_fuels"], "did you mean 'read_fuel'"),
        (["catalog", "signals", "--group", "charging"], "unknown group 'charging'"),
    ],
)
def test_errors_go_to_stderr_with_exit_2(args: list[str], fragment: str) -> None:
    """Bad input prints one clear `error:` line on stderr, nothing on stdout, and exits 2."""
    code, out, err = _run(*args)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ")
    assert fragment in err
    assert "Traceback" not in err


def test_catalog_signals_json_filters() -> None:
    """--group and --permission filter the JSON listing."""
    code, out, _ = _run("catalog", "signals", "--group", "closure", "--permission", "read_security", "--json")
    assert code == 0
    signals = json.loads(out)
    assert signals
    assert {s["group"] for s in signals} == {"closure"}
    assert {s["permission"] for s in signals} == {"read_security"}
    assert {"code", "name", "shape", "permission", "powertrains", "mapping"} <= set(signals[0])
    assert signals[0]["powertrains"] == ["ICE", "HEV", "PHEV", "BEV"]  # a stable order, not a set's


@pytest.mark.parametrize(("listing", "count"), [("signals", 96), ("commands", 22), ("permissions", 28)])
def test_catalog_listings(listing: str, count: int) -> None:
    """Each listing prints a table titled with its size, and JSON with one entry per item."""
    code, out, _ = _run("catalog", listing)
    assert code == 0
    assert f"{count} {listing}" in out
    code, out, _ = _run("catalog", listing, "--json")
    assert code == 0
    assert len(json.loads(out)) == count


def test_contract_export_writes_and_checks(tmp_path: Path) -> None:
    """export writes the schema files; --check then passes, and fails once a file is edited."""
    assert _run("contract", "export", "--out", str(tmp_path))[0] == 0
    assert len(list(tmp_path.glob("*.schema.json"))) == len(MESSAGE_TYPES)
    assert _run("contract", "export", "--out", str(tmp_path), "--check")[0] == 0
    (tmp_path / "request.v1.schema.json").write_text("{}")
    code, _, err = _run("contract", "export", "--out", str(tmp_path), "--check")
    assert code == 1
    assert "request.v1.schema.json" in err


def test_installed_console_script_runs_from_any_directory(tmp_path: Path) -> None:
    """The `fleetgate` entry point works as installed, outside the source tree (it finds its catalog)."""
    script = Path(sys.executable).with_name("fleetgate")
    result = subprocess.run(
        [str(script), "access", "derive", "-s", "odometer-traveleddistance", "-c", "lock"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert json.loads(result.stdout)["scope"] == "control_security read_odometer"
