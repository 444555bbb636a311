"""The registry's CLI against a real redis-server: JSON on stdout, errors on stderr with exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from fleetgate import app
from services.keyspace import Keys
from services.local_redis import RedisServer
from services.redis_client import connect_cluster, first_node_url, redact

CONFIG = """
[[signals]]
code = "odometer-traveleddistance"
required = true
[[signals]]
code = "tractionbattery-stateofcharge"   # required defaults to false
[[commands]]
name = "lock"
"""


@pytest.fixture
def cli(redis_server: RedisServer, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run `fleetgate ...` against the test server under this test's key prefix; returns (code, json, stderr)."""
    monkeypatch.setenv("FLEETGATE_REDIS_URL", redis_server.url)
    monkeypatch.setenv("FLEETGATE_KEY_PREFIX", keys.prefix)
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, Any, str]:
        result = runner.invoke(app, list(args))
        return result.exit_code, json.loads(result.stdout) if result.stdout else None, result.stderr

    return invoke


def _keys_written(redis_server: RedisServer, keys: Keys) -> list[bytes]:
    with redis.Redis.from_url(redis_server.url) as client:
        return sorted(client.scan_iter(match=f"{keys.prefix}:*"))


def test_publish_authorize_reauth_revoke(cli: Any, tmp_path: Path) -> None:
    """The whole Connect flow from the command line, with the documented JSON shapes."""
    config_file = tmp_path / "app.toml"
    config_file.write_text(CONFIG)
    code, published, _ = cli("access", "publish", str(config_file))
    assert code == 0
    assert (published["version"], published["scope"]) == (1, "control_security read_battery required:read_odometer")
    assert (
        cli(
            "vehicles",
            "add",
            "--id",
            "veh-1",
            "--make",
            "Tesla",
            "--model",
            "Model 3",
            "--year",
            "2022",
            "--powertrain",
            "BEV",
            "--lacks",
            "wheel-tires",
        )[0]
        == 0
    )
    code, vehicle, _ = cli("vehicles", "show", "veh-1")
    assert (code, vehicle["powertrain"], "wheel-tires" in vehicle["capabilities"]) == (0, "BEV", False)

    code, connection, _ = cli("connect", "authorize", "--vehicle", "veh-1", "--uncheck", "control_security")
    assert code == 0
    assert connection["permissions"] == [
        {"name": "read_battery", "required": False},
        {"name": "read_odometer", "required": True},
    ]
    assert (connection["status"], connection["source"]) == ("active", {"config_version": 1})
    connection_id = connection["connection_id"]

    code, reauthed, _ = cli("connect", "reauth", connection_id, "--scope", "read_vin")
    assert (code, reauthed["source"], reauthed["permissions"]) == (
        0,
        {"scope": "read_vin"},
        [{"name": "read_vin", "required": False}],
    )
    assert cli("connect", "revoke", connection_id)[1]["status"] == "revoked"
    assert cli("connect", "show", connection_id)[1]["status"] == "revoked"
    code, _, err = cli("connect", "reauth", connection_id)
    assert (code, err) == (2, f"error: connection '{connection_id}' is revoked; revocation is final\n")


def test_filters_set_show_and_refuse(cli: Any) -> None:
    """Filters round-trip; a filtered-out powertrain is refused with Connect's wording."""
    cli("vehicles", "add", "--id", "bev", "--make", "M", "--model", "X", "--year", "2024", "--powertrain", "BEV")
    code, filters, _ = cli("filters", "set", "--allow", "ice", "--allow", "PHEV")
    assert (code, filters) == (0, {"allow": ["ICE", "PHEV"], "allow_unknown": False})
    assert cli("filters", "show")[1] == filters
    code, _, err = cli("connect", "authorize", "--vehicle", "bev", "--scope", "read_vin")
    assert code == 2
    assert "not a vehicle whose powertrain is BEV" in err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["connect", "authorize", "--vehicle", "ghost", "--scope", "read_vin"], "unknown vehicle 'ghost'"),
        (["connect", "show", "c-ghost"], "unknown connection 'c-ghost'"),
        (["connect", "revoke", "c-ghost"], "unknown connection 'c-ghost'"),
        (["access", "show"], "no Vehicle Access config is published yet"),
        (["access", "publish", "/nonexistent/app.toml"], "cannot read"),
        (
            [
                "vehicles",
                "add",
                "--id",
                "v",
                "--make",
                "M",
                "--model",
                "X",
                "--year",
                "2024",
                "--powertrain",
                "BEV",
                "--adds",
                "internalcombustionengine-fuellevel",
            ],
            "cannot physically have",
        ),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(
    cli: Any, redis_server: RedisServer, keys: Keys, args: list[str], fragment: str
) -> None:
    """Unknown ids, missing files, impossible capabilities: `error: ...`, exit 2, no key written."""
    code, out, err = cli(*args)
    assert (code, out) == (2, None)
    assert err.startswith("error: ")
    assert fragment in err
    assert _keys_written(redis_server, keys) == []


def test_malformed_config_names_the_key_and_writes_nothing(
    cli: Any, tmp_path: Path, redis_server: RedisServer, keys: Keys
) -> None:
    """A config naming an unknown signal fails at its key; invalid TOML names the line."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[[signals]]\ncode = "odometer-traveleddistance"\n[[signals]]\ncode = "wheel-tyres"\n')
    code, _, err = cli("access", "publish", str(bad))
    assert code == 2
    assert "signals[1].code: unknown signal 'wheel-tyres'; did you mean 'wheel-tires'" in err
    bad.write_text("[[signals]\n")
    code, _, err = cli("access", "publish", str(bad))
    assert (code, "line 1" in err) == (2, True)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"signals": [{"code": "odometer-traveleddistance",}]}')
    code, _, err = cli("access", "publish", str(bad_json))
    assert (code, "invalid JSON at line 1" in err) == (2, True)
    assert _keys_written(redis_server, keys) == []


def test_unreachable_redis_is_a_clear_error_without_the_password(cli: Any) -> None:
    """A Redis that does not answer gives one line naming it, password redacted."""
    code, _, err = cli("filters", "show", "--redis-url", "redis://app:s3cret@127.0.0.1:1/0")
    assert code == 2
    assert "redis://app:***@127.0.0.1:1/0" in err
    assert "s3cret" not in err


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://fleet:s3cret@db.internal:6380/1", "redis://fleet:***@db.internal:6380/1"),
        (
            "rediss://db.internal/0?ssl_ca_certs=/ca.crt&password=s3cret",
            "rediss://db.internal/0?ssl_ca_certs=/ca.crt&password=***",
        ),
        ("redis://:s3cret@db.internal:6380", "redis://:***@db.internal:6380"),
        ("redis://fleet:s3cret@a:7000,b:7001/0", "redis://fleet:***@a:7000,b:7001/0"),
    ],
)
def test_redact_hides_passwords_wherever_the_url_carries_them(url: str, shown: str) -> None:
    """In the user part or as a `password=` query parameter (redis-py accepts both), one host or several."""
    assert redact(url) == shown


def test_a_cluster_url_with_several_nodes_makes_each_a_startup_node_with_the_credentials() -> None:
    """`redis://user:pass@a:7000,b:7001/0`: a client started while `a` is down still finds the cluster via `b`."""
    url = "redis://fleet:s3cret@a.internal:7000,b.internal:7001/0"
    assert first_node_url(url) == "redis://fleet:s3cret@a.internal:7000/0"
    client = connect_cluster(url)
    nodes = {(node.host, node.port): node.connection_kwargs for node in client.startup_nodes}
    assert set(nodes) == {("a.internal", 7000), ("b.internal", 7001)}
    assert all(kwargs["password"] == "s3cret" and kwargs["username"] == "fleet" for kwargs in nodes.values())


def test_a_malformed_cluster_node_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"'b\.internal' in the Redis URL is not host:port"):
        connect_cluster("redis://a.internal:7000,b.internal/0")


def test_apps_create_show_rotate_and_per_app_config(cli: Any, tmp_path: Path) -> None:
    """An app is created with its secrets shown once, listed and shown without them, rotated; a config and filters
    published for it leave the default app's alone; an unknown --app is an error that writes nothing."""
    code, created, _ = cli("apps", "create", "--name", "Fleet app", "--redirect-uri", "http://localhost:3000/cb")
    assert code == 0
    app_id = created["client_id"]
    assert len(created["client_secret"]) == len(created["management_token"]) == 43
    assert (created["mode"], created["permissions"]) == ("live", "any")
    code, listed, _ = cli("apps", "list")
    assert [a["client_id"] for a in listed] == ["default", app_id]
    assert all("client_secret" not in a and "management_token" not in a for a in listed)
    code, rotated, _ = cli("apps", "rotate-secret", app_id)
    assert code == 0
    assert rotated["client_secret"] != created["client_secret"]
    assert cli("apps", "show", app_id)[1]["client_secrets"] == 2

    config_file = tmp_path / "app.toml"
    config_file.write_text(CONFIG)
    assert cli("access", "publish", str(config_file), "--app", app_id)[0] == 0
    assert cli("filters", "set", "--allow", "BEV", "--app", app_id)[0] == 0
    assert cli("access", "show", "--app", app_id)[1]["version"] == 1
    code, _, err = cli("access", "show")
    assert code == 2
    assert err.strip() == "error: no Vehicle Access config is published yet (fleetgate access publish FILE)"
    assert cli("filters", "show")[1] == {"allow": [], "allow_unknown": True}
    assert cli("filters", "show", "--app", app_id)[1] == {"allow": ["BEV"], "allow_unknown": False}

    code, out, err = cli("filters", "set", "--allow", "ICE", "--app", "no-such-app")
    assert (code, out, err.strip()) == (2, None, "error: unknown application 'no-such-app' (fleetgate apps list)")
    assert cli("apps", "list")[1][-1]["client_id"] == app_id


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--redirect-uri", "example.com/cb"], "error: redirect URI 'example.com/cb' must be an absolute http://"),
        (["--redirect-uri", "http://x.example/cb", "--mode", "sandbox"], "Invalid value for '--mode'"),
        (["--redirect-uri", "http://x.example/cb", "--permission", "read_odomoter"], "read_odometer"),
    ],
)
def test_apps_create_refuses_bad_input(cli: Any, args: list[str], message: str) -> None:
    """A bad redirect URI or mode is one clear error, and no app is created."""
    code, out, err = cli("apps", "create", "--name", "x", *args)
    assert (code, out) == (2, None)
    assert message in err
    assert [a["client_id"] for a in cli("apps", "list")[1]] == ["default"]


def test_simulate_owners_connects_to_the_app_given(cli: Any, redis_server: RedisServer, keys: Keys) -> None:
    """`simulate owners --app` publishes the simulator's config as that app's (it had none) and connects the owners
    to it; the default app's config is not created; an unknown app is an error that connects nobody."""
    runner = CliRunner()
    assert runner.invoke(app, ["simulate", "fleet", "--vehicles", "5"]).exit_code == 0
    unknown = runner.invoke(app, ["simulate", "owners", "--vehicles", "5", "--app", "nope"])
    assert unknown.exit_code != 0
    assert "unknown application 'nope'" in unknown.stderr
    code, created, _ = cli("apps", "create", "--name", "Fleet app", "--redirect-uri", "https://app.example/cb")
    assert code == 0
    app_id = created["client_id"]
    connected = runner.invoke(app, ["simulate", "owners", "--vehicles", "5", "--app", app_id])
    assert connected.exit_code == 0, connected.stderr
    assert "connected 5 of 5 vehicles" in connected.stdout
    written = [key.decode() for key in _keys_written(redis_server, keys)]
    assert f"{keys.prefix}:app:{app_id}:access:current" in written
    assert keys.current_config not in written
    assert f"{keys.prefix}:app:{app_id}:connections" in written


@pytest.mark.parametrize(
    ("client_id", "message"),
    [("default", "is the default application's id"), ("a b", "client id 'a b': use letters"), ("x", "")],
)
def test_apps_create_with_a_chosen_client_id(cli: Any, client_id: str, message: str) -> None:
    """A chosen client id is kept; the default app's id or one outside the id alphabet is refused; a taken one
    too."""
    args = ("apps", "create", "--name", "n", "--redirect-uri", "http://x.example/cb", "--client-id", client_id)
    code, out, err = cli(*args)
    if message:
        assert (code, out) == (2, None)
        assert message in err
        return
    assert (code, out["client_id"]) == (0, client_id)
    code, out, err = cli(*args)
    assert (code, out, err.strip()) == (2, None, f"error: application {client_id!r} already exists")


def test_apps_create_restricted_to_some_permissions(cli: Any) -> None:
    """`--permission` restricts what the app may request; show prints them, sorted and without repeats."""
    args = ("apps", "create", "--name", "n", "--redirect-uri", "http://x.example/cb", "--client-id", "narrow")
    code, _, _ = cli(*args, "--permission", "read_vin", "--permission", "read_odometer", "--permission", "read_vin")
    assert code == 0
    assert cli("apps", "show", "narrow")[1]["permissions"] == ["read_odometer", "read_vin"]
