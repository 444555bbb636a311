"""`fleetgate access advise|whatif` and `fleetgate usage run` on bad input: one `error:` line on stderr, exit 2,
nothing on stdout; and a run on an empty world, which has nothing to count and says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from fleetgate import app
from services.keyspace import Keys
from services.local_redis import RedisServer

CONFIG = '[[signals]]\ncode = "odometer-traveleddistance"\nrequired = true\n'


@pytest.fixture
def cli(redis_server: RedisServer, keys: Keys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("FLEETGATE_REDIS_URL", redis_server.url)
    monkeypatch.setenv("FLEETGATE_KEY_PREFIX", keys.prefix)
    monkeypatch.chdir(tmp_path)
    Path("app.toml").write_text(CONFIG)
    return CliRunner()


def refused(result: Result) -> str:
    """The one error line of a refused command (exit 2, nothing on stdout)."""
    assert (result.exit_code, result.stdout) == (2, "")
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ")
    return line


@pytest.mark.parametrize(
    ("window", "says"),
    [("7x", "'7x': give a whole number and a unit"), ("0d", "'0d' is empty"), ("-1d", "'-1d'"), ("60d", "35 days")],
)
def test_a_bad_window_is_one_line(cli: CliRunner, window: str, says: str) -> None:
    """Another unit, zero, a sign, or a window reaching past the usage kept: one line naming it, exit 2."""
    assert says in refused(cli.invoke(app, ["access", "advise", "--since", window]))


def test_an_unknown_app_is_one_line(cli: CliRunner) -> None:
    """Advise and what-if for an app nobody registered: one line naming it, exit 2."""
    assert "'no-such-app'" in refused(cli.invoke(app, ["access", "advise", "--app", "no-such-app"]))
    assert "'no-such-app'" in refused(cli.invoke(app, ["access", "whatif", "app.toml", "--app", "no-such-app"]))


def test_a_config_file_with_a_typo_is_one_line_with_the_likely_name(cli: CliRunner) -> None:
    """A misspelt signal code is named with its location in the file and the code probably meant."""
    Path("typo.toml").write_text(CONFIG.replace("odometer-", "odometr-"))
    line = refused(cli.invoke(app, ["access", "whatif", "typo.toml"]))
    assert "typo.toml: signals[0].code: unknown signal 'odometr-traveleddistance'" in line
    assert "did you mean 'odometer-traveleddistance'" in line
    assert "cannot read" in refused(cli.invoke(app, ["access", "whatif", "missing.toml"]))


def test_advice_needs_a_published_config(cli: CliRunner) -> None:
    """Without a published config there is nothing to advise on: one line saying how to publish one."""
    assert "fleetgate access publish" in refused(cli.invoke(app, ["access", "advise"]))


def test_an_empty_world_has_nothing_to_count(cli: CliRunner) -> None:
    """On a registry with a config and no vehicle, connection or decision: what-if is all zeros and no shares,
    the advice has no uses and says no usage consumer ran; after one ran (nothing to count), it counts."""
    assert cli.invoke(app, ["access", "publish", "app.toml"]).exit_code == 0
    whatif = json.loads(cli.invoke(app, ["access", "whatif", "app.toml", "--json"]).stdout)
    assert (whatif["fleet"], whatif["targets"][0]["share"]) == ({"vehicles": 0, "connectable": 0}, None)
    advice = json.loads(cli.invoke(app, ["access", "advise", "--json"]).stdout)
    assert (advice["outcomes"], advice["aggregate"]["counting"]) == ({}, False)
    assert "no usage consumer has run yet" in cli.invoke(app, ["access", "advise"]).stdout
    counted = cli.invoke(app, ["usage", "run", "--until-idle"])
    assert (counted.exit_code, json.loads(counted.stdout)["counted"]) == (0, 0)
    advice = json.loads(cli.invoke(app, ["access", "advise", "--json"]).stdout)
    assert advice["aggregate"] == {"counting": True, "behind": 0, "retention_days": 35}
