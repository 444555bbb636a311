"""`fleetgate webhooks` against a real redis-server and the test receiver: create runs VERIFY and says how it went,
list/show/verify/delete, one-line errors with exit 2 for bad input, and the management token never printed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from redis.asyncio import Redis
from typer.testing import CliRunner

from fleetgate import app
from schemas.application import AppMode
from services.keyspace import Keys
from services.local_redis import RedisServer
from services.registry import AppStore, CreatedApp
from services.webhooks.log import LogEntry, Records
from services.webhooks.store import WebhookStore
from tests.webhooks.receiver import receiving

pytestmark = pytest.mark.redis
SOC = "tractionbattery-stateofcharge"
ODOMETER = "odometer-traveleddistance"


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


Cli = Callable[..., Ran]


@pytest.fixture
def cli(redis_server: RedisServer, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """`fleetgate ...` on the test's redis-server and key prefix, with a short webhook timeout."""
    monkeypatch.setenv("FLEETGATE_REDIS_URL", redis_server.url)
    monkeypatch.setenv("FLEETGATE_KEY_PREFIX", keys.prefix)
    monkeypatch.setenv("FLEETGATE_WEBHOOK_TIMEOUT_S", "5")
    monkeypatch.delenv("FLEETGATE_MANAGEMENT_TOKEN", raising=False)
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None) -> Ran:
        result = runner.invoke(app, list(args), env=env)
        return Ran(result.exit_code, result.stdout, result.stderr)

    return invoke


async def in_thread(cli: Cli, *args: str, env: dict[str, str] | None = None) -> Ran:
    """Run the CLI off the event loop (it runs its own), where the receiver answers."""
    return await asyncio.to_thread(cli, *args, env=env)


@pytest.fixture
async def fleet(redis: Redis, keys: Keys) -> CreatedApp:
    return await AppStore(redis, keys).create("Fleet", ["https://app.example/cb"], AppMode.TEST, app_id="fleet")


async def test_create_list_show_verify_delete(cli: Cli, fleet: CreatedApp, redis: Redis, keys: Keys) -> None:
    """create stores the definition and verifies it (token from the environment); list and show print it with its
    subscriber count; delete forgets it; nothing ever prints the management token."""
    amt = fleet.management_token
    outputs: list[Ran] = []
    async with receiving(amt) as receiver:
        created = await in_thread(
            cli,
            *("webhooks", "create", "--app", "fleet", "--name", "Battery", "--url", f"{receiver.url}/h"),
            *("--signals", f"{SOC}, {ODOMETER}", "--on-change", SOC, "--schedule", "60", "--no-vehicle-errors"),
            env={"FLEETGATE_MANAGEMENT_TOKEN": amt},
        )
        outputs.append(created)
        assert created.code == 0, created.stderr
        webhook_id = created.stdout.split()[2]
        assert created.stdout.splitlines()[1].startswith("verified")
        assert len(receiver.verifies) == 1
        verified = await in_thread(cli, "webhooks", "verify", webhook_id)
        outputs.append(verified)
        assert (verified.code, verified.stdout.split(":", 1)[1].split(":")[0].strip()) == (0, "verified")
    await WebhookStore(redis, keys).subscribe(webhook_id, "veh-1", "conn-1")
    listed = await in_thread(cli, "webhooks", "list", "--app", "fleet", "--json")
    shown = await in_thread(cli, "webhooks", "show", webhook_id, "--json")
    table = await in_thread(cli, "webhooks", "show", webhook_id)
    outputs += [listed, shown, table, await in_thread(cli, "webhooks", "list", "--app", "fleet")]
    assert [w["id"] for w in listed.json] == [webhook_id]
    assert shown.json == listed.json[0]
    assert shown.json["signals"] == [SOC, ODOMETER]
    assert shown.json["triggers"] == {"signal_changed": [SOC], "schedule_s": 60, "vehicle_error": False}
    assert (shown.json["verified"], shown.json["subscribers"]) == (True, 1)
    assert "every 60 s" in table.stdout
    deleted = await in_thread(cli, "webhooks", "delete", webhook_id)
    outputs.append(deleted)
    assert (deleted.code, deleted.stdout.strip()) == (0, f"deleted webhook {webhook_id}")
    gone = await in_thread(cli, "webhooks", "show", webhook_id)
    assert (gone.code, gone.stderr.strip()) == (2, f"error: unknown webhook {webhook_id!r} (fleetgate webhooks list)")
    assert (await in_thread(cli, "webhooks", "list", "--app", "fleet", "--json")).json == []
    assert await WebhookStore(redis, keys).signing_key("fleet") is None
    assert await WebhookStore(redis, keys).of_vehicle("veh-1") == []
    assert all(amt not in ran.stdout + ran.stderr for ran in outputs)


async def test_an_endpoint_that_answers_wrong_stays_unverified_until_it_answers_right(
    cli: Cli, fleet: CreatedApp
) -> None:
    """create succeeds but says why the webhook is not verified; verify exits 1 with the reason while the answer
    is wrong, and 0 once it is right."""
    amt = fleet.management_token
    async with receiving(amt, wrong_challenge=True) as receiver:
        created = await in_thread(
            cli,
            *("webhooks", "create", "--app", "fleet", "--name", "B", "--url", receiver.url, "--signals", SOC),
            *("--management-token", amt, "--json"),
        )
        assert created.code == 0, created.stderr
        assert created.json["verified"] is False
        assert created.json["reason"].startswith("wrong challenge answer")
        webhook_id = created.json["id"]
        failed = await in_thread(cli, "webhooks", "verify", webhook_id)
        assert failed.code == 1
        assert "not verified: wrong challenge answer" in failed.stdout
        assert f"fleetgate webhooks verify {webhook_id}" in failed.stdout
        receiver.wrong_challenge = False
        fixed = await in_thread(cli, "webhooks", "verify", webhook_id, "--json")
        assert (fixed.code, fixed.json) == (0, {"id": webhook_id, "verified": True, "reason": None})
        receiver.answer_verify(503, {"error": "maintenance"})
        down = await in_thread(cli, "webhooks", "verify", webhook_id, "--json")
    assert (down.code, down.json["verified"], down.json["reason"]) == (1, False, "HTTP 503: not 2xx")
    assert amt not in created.stdout + failed.stdout + fixed.stdout + down.stdout


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"--app": "nope"}, "error: unknown application 'nope'"),
        ({"--signals": "tractionbattery-stateofcharg"}, "did you mean 'tractionbattery-stateofcharge'"),
        ({"--on-change": ODOMETER}, "signal_changed names signals the webhook does not carry: odometer"),
        ({"--url": "ftp://a.example/h"}, "a callback URL must start with http:// or https://"),
        ({"--url": "https://user:pw@a.example/h"}, "error: a callback URL must not carry a user name or password"),
        ({"--error-url": "https://b.example/h"}, "'b.example' is not among the allowed webhook hosts (a.example)"),
        ({"--management-token": "not-the-token"}, "error: that is not the management token of application 'fleet'"),
        ({"--management-token": ""}, "error: the app's management token is needed"),
        ({"--on-change": " , "}, "error: --on-change names no signal"),
        ({"--signals": ","}, "error: --signals names no signal"),
        ({"--name": ""}, "error: name: String should have at least 1 character"),
    ],
)
async def test_bad_input_is_one_line_and_exit_2_and_nothing_is_created(
    cli: Cli, fleet: CreatedApp, redis: Redis, keys: Keys, change: dict[str, str], error: str
) -> None:
    """Each mistake is reported on one stderr line, exit 2, with no webhook stored and no token printed."""
    options = {
        "--app": "fleet",
        "--name": "B",
        "--url": "https://a.example/h",
        "--signals": SOC,
        "--management-token": fleet.management_token,
    } | change
    args = [part for option, value in options.items() for part in (option, value)]
    ran = await in_thread(cli, "webhooks", "create", *args, env={"FLEETGATE_WEBHOOK_ALLOWED_HOSTS": "a.example"})
    assert ran.code == 2
    assert ran.stdout == ""
    assert len(ran.stderr.strip().splitlines()) == 1
    assert ran.stderr.startswith("error: ")
    assert error in ran.stderr
    assert fleet.management_token not in ran.stderr
    assert await WebhookStore(redis, keys).of_app("fleet") == []


def test_unknown_ids_and_apps_are_one_line_errors(cli: Cli) -> None:
    """verify, delete, deliveries and list of what does not exist: one line, exit 2."""
    for args, error in (
        (("verify", "no-such-id"), "error: unknown webhook 'no-such-id' (fleetgate webhooks list)"),
        (("delete", "no-such-id"), "error: unknown webhook 'no-such-id' (fleetgate webhooks list)"),
        (("deliveries", "no-such-id"), "error: unknown webhook 'no-such-id' (fleetgate webhooks list)"),
        (("list", "--app", "nope"), "error: unknown application 'nope'"),
    ):
        ran = cli("webhooks", *args)
        assert (ran.code, ran.stdout) == (2, ""), args
        assert ran.stderr.strip().startswith(error), args
        assert len(ran.stderr.strip().splitlines()) == 1, args


async def test_deliveries_prints_the_log_newest_first(cli: Cli, fleet: CreatedApp, redis: Redis, keys: Keys) -> None:
    """`webhooks deliveries` prints what the worker logged, newest first, as JSON and as a table."""
    store = WebhookStore(redis, keys)
    made = await store.create(
        "fleet", management_token=fleet.management_token, name="B", callback_url="https://a.example/h", signals=[SOC]
    )
    records = Records(redis, keys, log_maxlen=100)
    for n, status in enumerate(("delivered", "dead")):
        entry = LogEntry(
            f"event-{n}",
            "veh-1",
            "VEHICLE_STATE",
            "SCHEDULED",
            status,
            n + 1,
            500 if n else 204,
            12.5,
            "HTTP 500: not 2xx" if n else None,
            1_796_000_000_000 + n,
        )
        await records.log(made.id, entry)
    shown = await in_thread(cli, "webhooks", "deliveries", made.id, "--json")
    assert shown.code == 0, shown.stderr
    assert [(r["event_id"], r["status"], r["attempts"], r["http_status"]) for r in shown.json] == [
        ("event-1", "dead", 2, 500),
        ("event-0", "delivered", 1, 204),
    ]
    table = await in_thread(cli, "webhooks", "deliveries", made.id, "--limit", "1")
    assert "event-1" in table.stdout
    assert "event-0" not in table.stdout
    assert "HTTP 500: not 2xx" in table.stdout
