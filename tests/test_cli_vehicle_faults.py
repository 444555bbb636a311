"""`fleetgate vehicles fault|faults` against a real redis-server: faults added, listed in order and cleared, as JSON;
each bad input refused in one line on stderr with exit 2 and nothing written."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from devtools.builders import make_vehicle
from fleetgate import app
from schemas.powertrain import Powertrain
from services.keyspace import Keys
from services.local_redis import RedisServer
from services.registry import Registry

pytestmark = pytest.mark.usefixtures("vehicles")


@pytest.fixture
async def vehicles(registry: Registry) -> None:
    """A BEV `veh-1` and a petrol car `ice-1`."""
    await registry.add_vehicle(make_vehicle(Powertrain.BEV, vehicle_id="veh-1"))
    await registry.add_vehicle(make_vehicle(Powertrain.ICE, vehicle_id="ice-1"))


@pytest.fixture
def cli(redis_server: RedisServer, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run `fleetgate vehicles ...` on the test server under this test's prefix: (exit code, JSON, stderr)."""
    monkeypatch.setenv("FLEETGATE_REDIS_URL", redis_server.url)
    monkeypatch.setenv("FLEETGATE_KEY_PREFIX", keys.prefix)
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, Any, str]:
        result = runner.invoke(app, ["vehicles", *args])
        return result.exit_code, json.loads(result.stdout) if result.stdout else None, result.stderr

    return invoke


def _everything(redis_server: RedisServer, keys: Keys) -> dict[bytes, Any]:
    """Every key of the test's prefix with its value (hashes whole), to show that nothing was written."""
    with redis.Redis.from_url(redis_server.url) as client:
        found: dict[bytes, Any] = {}
        for key in client.scan_iter(match=f"{keys.prefix}:*"):
            kind = client.type(key)
            found[key] = client.hgetall(key) if kind == b"hash" else client.dump(key)
        return found


def test_faults_are_added_listed_and_cleared(cli: Any) -> None:
    """Four faults get ids f1..f4 and list in that order with their modes; clearing f2 leaves the others, --all
    leaves none; a windowed fault shows its window in RFC 3339."""
    added = [
        cli("fault", "veh-1", "--error", "ASLEEP", "--target", "odometer-traveleddistance")[1],
        cli("fault", "veh-1", "--error", "UPSTREAM/NO_RESPONSE", "--next", "2", "--target", "lock")[1],
        cli("fault", "veh-1", "--error", "RATE_LIMIT/VEHICLE", "--retry-after", "30", "--probability", "0.25")[1],
        cli("fault", "veh-1", "--delay-ms", "1500", "--for", "10m")[1],
    ]
    assert [a["added"]["id"] for a in added] == ["f1", "f2", "f3", "f4"]
    code, listed, _ = cli("faults", "veh-1")
    assert code == 0
    faults = listed["faults"]
    assert faults[0] == {
        "id": "f1",
        "target": "odometer-traveleddistance",
        "error": "VEHICLE_STATE/ASLEEP",
        "delay_ms": 0,
        "mode": "always",
    }
    assert (faults[1]["mode"], faults[1]["remaining"]) == ("next", 2)
    assert (faults[2]["mode"], faults[2]["probability"], faults[2]["retry_after_s"]) == ("probability", 0.25, 30)
    assert faults[3]["delay_ms"] == 1500
    assert faults[3]["start"].endswith("Z")
    assert faults[3]["until"] > faults[3]["start"]
    code, cleared, _ = cli("fault", "veh-1", "--clear", "f2")
    assert (code, cleared["cleared"], [f["id"] for f in cleared["faults"]]) == (0, ["f2"], ["f1", "f3", "f4"])
    code, cleared, _ = cli("fault", "veh-1", "--clear", "--all")
    assert (code, cleared["cleared"], cleared["faults"]) == (0, ["f1", "f3", "f4"], [])
    assert cli("faults", "veh-1")[1] == {"vehicle_id": "veh-1", "faults": []}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["veh-1", "--error", "SLEEPY"], "--error: unknown error 'SLEEPY'"),
        (["veh-1", "--error", "RATE_LIMIT"], "ambiguous: say UPSTREAM/RATE_LIMIT or RATE_LIMIT/VEHICLE"),
        (["veh-1", "--error", "ASLEEP", "--target", "odometer-travelled"], "unknown signal or command"),
        (["ice-1", "--error", "ASLEEP", "--target", "start-charge"], "vehicle ice-1 is not capable of start-charge"),
        (["veh-1", "--error", "ASLEEP", "--probability", "1.5"], "--probability 1.5: a probability is from 0 to 1"),
        (["veh-1", "--error", "ASLEEP", "--next", "0"], "--next 0: the number of requests is 1 or more"),
        (["veh-1", "--error", "ASLEEP", "--next", "2", "--always"], "at most one of --always, --probability"),
        (["veh-1", "--error", "ASLEEP", "--retry-after", "5"], "--retry-after goes with --error RATE_LIMIT/VEHICLE"),
        (["veh-1", "--delay-ms", "0"], "--delay-ms 0: milliseconds from 1 to 300000"),
        (["veh-1", "--error", "ASLEEP", "--for", "10 minutes"], "--for: bad duration '10 minutes'"),
        (["veh-1"], "say what to inject"),
        (["nope", "--error", "ASLEEP"], "unknown vehicle 'nope'"),
        (["veh-1", "--clear", "f9"], "vehicle veh-1: no fault f9 on this vehicle (it has: f1)"),
        (["veh-1", "--clear"], "say which faults to clear"),
        (["veh-1", "f1"], "goes with --clear only"),
    ],
)
def test_bad_input_is_refused_in_one_line_and_nothing_is_written(
    cli: Any, redis_server: RedisServer, keys: Keys, args: list[str], message: str
) -> None:
    """Exit 2, one `error: ...` line naming what is wrong, no output, and every key as it was."""
    assert cli("fault", "veh-1", "--error", "ASLEEP")[0] == 0
    before = _everything(redis_server, keys)
    code, printed, stderr = cli("fault", *args)
    assert (code, printed) == (2, None)
    assert stderr.count("\n") == 1
    assert stderr.startswith("error: ")
    assert message in stderr
    assert _everything(redis_server, keys) == before


def test_listing_the_faults_of_an_unknown_vehicle_is_refused(cli: Any) -> None:
    """`faults` of a vehicle the registry does not hold: exit 2, naming it."""
    code, _, stderr = cli("faults", "nope")
    assert (code, stderr) == (2, "error: unknown vehicle 'nope'\n")
