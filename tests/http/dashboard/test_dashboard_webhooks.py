"""The dashboard's Webhooks pages over HTTP (the app in-process, the real redis-server, the test receiver on a
loopback port): the empty list, create with VERIFY, each field's problem in one line, another app's webhook as the
dashboard's 404, CSRF on every form, the delivery log and dead letters of this webhook only, delete after its
confirmation, and the management token on no page."""

from __future__ import annotations

import html
import re

import pytest

from schemas.webhooks import Triggers, Webhook
from services.http.dashboard.webhooks import triggers_in_words
from services.registry import AppStore
from services.webhooks.log import LogEntry, Records
from services.webhooks.store import WebhookStore
from tests.http.dashboard.conftest import Dash, new_app
from tests.webhooks.receiver import receiving

SOC = "tractionbattery-stateofcharge"
ODOMETER = "odometer-traveleddistance"


def form(dash: Dash, csrf: str, **fields: str | list[str]) -> dict[str, str | list[str]]:
    """The New webhook form's fields: a name, the state of charge, the app's own token, unless given."""
    values: dict[str, str | list[str]] = {"csrf": csrf, "name": "Battery", "signal": [SOC], "on_change": [SOC],
                                          "vehicle_errors": "on", "token": dash.created.management_token}  # fmt: skip
    return values | fields


def store(dash: Dash) -> WebhookStore:
    return WebhookStore(dash.registry.redis, dash.registry.keys)


async def test_the_list_says_how_to_make_a_webhook_when_there_is_none(signed: Dash) -> None:
    """With no webhook, the Webhooks page (linked from the navigation) says how to make one."""
    page = await signed.http.get(f"{signed.base}/webhooks")
    assert page.status_code == 200
    assert 'id="nav-webhooks"' in page.text
    assert 'id="no-webhooks"' in page.text
    assert f'href="{signed.base}/webhooks/new"' in page.text


async def test_create_runs_verify_and_the_pages_show_it(signed: Dash) -> None:
    """Create stores the definition (triggers from the form) and VERIFYs it against the receiver: its page says
    verified, the list shows its URL, signal count, triggers and verified; no page carries the management token."""
    csrf = await signed.csrf("/webhooks/new")
    async with receiving(signed.created.management_token) as receiver:
        url = f"{receiver.url}/hooks"
        fields = form(signed, csrf, url=url, signal=[SOC, ODOMETER], on_change=[SOC], schedule="300")
        created = await signed.http.post(f"{signed.base}/webhooks", data=fields)
        assert created.status_code == 303, created.text
        assert len(receiver.verifies) == 1
    (webhook,) = await store(signed).of_app(signed.app_id)
    assert created.headers["location"] == f"{signed.base}/webhooks/{webhook.id}?created=1"
    assert (webhook.verified, webhook.callback_url, webhook.signals) == (True, url, (SOC, ODOMETER))
    assert webhook.triggers == Triggers(signal_changed=(SOC,), schedule_s=300, vehicle_error=True)
    shown = await signed.http.get(created.headers["location"])
    assert 'id="verify-outcome" data-verified="true"' in shown.text
    listed = await signed.http.get(f"{signed.base}/webhooks")
    row = re.search(rf'<tr id="webhook-{webhook.id}">(.*?)</tr>', listed.text, re.S)
    assert row is not None
    text = re.sub(r"<[^>]+>|\s+", " ", row.group(1))
    assert url in text
    assert "when State of Charge changes · every 5 min · vehicle errors" in text
    assert "verified" in text
    assert "not verified" not in text
    for page in (shown, listed, await signed.http.get(f"{signed.base}/webhooks/new")):
        assert signed.created.management_token not in page.text


async def test_a_wrong_challenge_answer_shows_the_reason(signed: Dash) -> None:
    """An endpoint that answers VERIFY wrong leaves the webhook created but unverified, and both its page and
    the list give the reason; Verify again once the endpoint answers right verifies it."""
    csrf = await signed.csrf("/webhooks/new")
    async with receiving(signed.created.management_token, wrong_challenge=True) as receiver:
        created = await signed.http.post(f"{signed.base}/webhooks", data=form(signed, csrf, url=receiver.url))
        shown = await signed.http.get(created.headers["location"])
        assert 'data-verified="false"' in shown.text
        assert "wrong challenge answer" in shown.text
        listed = await signed.http.get(f"{signed.base}/webhooks")
        assert "not verified" in listed.text
        assert "wrong challenge answer" in listed.text
        receiver.wrong_challenge = False
        page_url = created.headers["location"].split("?")[0]
        again = await signed.http.post(f"{page_url}/verify", data={"csrf": csrf})
    assert again.headers["location"] == f"{page_url}?checked=1"
    after = await signed.http.get(again.headers["location"])
    assert 'id="verify-outcome" data-verified="true"' in after.text
    (webhook,) = await store(signed).of_app(signed.app_id)
    assert webhook.verified


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"url": "ftp://example.com/hook"}, "url", "must start with http:// or https://"),
        ({"url": "https://user:pw@example.com/hook"}, "url", "must not carry a user name or password"),
        ({"error_url": "example.com"}, "error_url", "must start with http:// or https://"),
        ({"signal": ["tractionbattery-stateofcharg"]}, "signals", "tractionbattery-stateofcharge"),
        ({"signal": []}, "signals", "Tick at least one signal"),
        ({"on_change": [], "schedule": ""}, "signals", "Nothing would make an event after the first"),
        ({"schedule": "soon"}, "schedule", "whole number of seconds"),
        ({"name": " "}, "name", "Give the webhook a name"),
        ({"token": "not-the-token"}, "token", "not this application's management token"),
        ({"token": ""}, "token", "management token is needed"),
    ],
)
async def test_a_bad_field_is_said_beside_it_and_nothing_is_created(
    signed: Dash, fields: dict[str, str | list[str]], field: str, words: str
) -> None:
    """Each bad field answers 400 with one line beside that field (and only that one); nothing is stored, no
    VERIFY is sent, and the posted values come back but the token does not."""
    csrf = await signed.csrf("/webhooks/new")
    posted = form(signed, csrf, **({"url": "http://127.0.0.1:9/hooks"} | fields))
    answer = await signed.http.post(f"{signed.base}/webhooks", data=posted)
    assert answer.status_code == 400
    found = re.findall(r'<p class="field-error" id="error-([a-z_]+)" role="alert">([^<]*)</p>', answer.text)
    errors = {name: html.unescape(text) for name, text in found}
    assert list(errors) == [field]
    assert words in errors[field]
    assert "\n" not in errors[field]
    assert await store(signed).of_app(signed.app_id) == []
    assert signed.created.management_token not in answer.text


async def test_another_apps_webhook_is_not_found_and_forms_need_the_csrf_token(signed: Dash) -> None:
    """Another app's webhook id answers the dashboard's 404 on its page, Verify, and Delete (nothing changes);
    a form of this app's own webhook without the session's CSRF token is refused 403 and changes nothing."""
    other = await new_app(signed.registry, "Other")
    theirs = await store(signed).create(
        other.app.id, management_token=other.management_token, name="Theirs", callback_url="http://127.0.0.1:9/h",
        signals=[SOC],
    )  # fmt: skip
    mine = await store(signed).create(
        signed.app_id, management_token=signed.created.management_token, name="Mine",
        callback_url="http://127.0.0.1:9/h", signals=[SOC],
    )  # fmt: skip
    csrf = await signed.csrf("/webhooks")
    base = f"{signed.base}/webhooks"
    for path in (theirs.id, f"{theirs.id}/delete", "no-such-id"):
        page = await signed.http.get(f"{base}/{path}")
        assert page.status_code == 404
        assert 'id="problem"' in page.text
    for action in ("verify", "delete"):
        assert (await signed.http.post(f"{base}/{theirs.id}/{action}", data={"csrf": csrf})).status_code == 404
        assert (await signed.http.post(f"{base}/{mine.id}/{action}", data={"csrf": "forged"})).status_code == 403
    assert (await signed.http.post(base, data=form(signed, "forged", url="http://127.0.0.1:9/h"))).status_code == 403
    assert await store(signed).find(theirs.id) == theirs
    assert await store(signed).find(mine.id) == mine
    assert [w.name for w in await store(signed).of_app(signed.app_id)] == ["Mine"]


async def test_the_page_shows_its_log_and_dead_letters_and_delete_asks_first(signed: Dash) -> None:
    """A webhook's page lists its delivery log entries and its own dead letters (not another webhook's); the
    delete confirmation changes nothing, its form deletes the webhook and the list says so."""
    made = [
        await store(signed).create(
            signed.app_id, management_token=signed.created.management_token, name=name,
            callback_url="http://127.0.0.1:9/h", signals=[SOC],
        )
        for name in ("Logged", "Elsewhere")
    ]  # fmt: skip
    webhook, elsewhere = made
    records = Records(signed.registry.redis, signed.registry.keys, 100)
    entry = LogEntry("ev-delivered-1", "veh-7", "VEHICLE_STATE", "FIRST_DELIVERY", "delivered", 2, 204, 12.5,
                     None, 1_700_000_000_000)  # fmt: skip
    await records.log(webhook.id, entry)
    for owner, event_id in ((webhook, "ev-dead-1"), (elsewhere, "ev-dead-other")):
        event = {"event_id": event_id, "webhook_id": owner.id, "vehicle_id": "veh-7", "event_type": "VEHICLE_STATE",
                 "reason": "SCHEDULED"}  # fmt: skip
        await records.dead_letter(reason="HTTP 500: not 2xx", shard=0, entry_id="1-0", event=event, attempts=6)
    url = f"{signed.base}/webhooks/{webhook.id}"
    page = (await signed.http.get(url)).text
    row = re.search(r'<tr class="delivery status-delivered" data-event-id="ev-delivered-1">(.*?)</tr>', page, re.S)
    assert row is not None
    cells = [re.sub(r"<[^>]+>|\s+", " ", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)]
    assert cells == ["2023-11-14 22:13:20", "ev-delivered-1", "veh-7", "VEHICLE_STATE FIRST_DELIVERY", "delivered",
                     "2", "204", "12 ms", ""]  # fmt: skip
    assert "ev-dead-1" in page
    assert "ev-dead-other" not in page
    csrf = await signed.csrf(f"/webhooks/{webhook.id}")
    confirm = await signed.http.get(f"{url}/delete")
    assert 'id="confirm-delete"' in confirm.text
    assert await store(signed).find(webhook.id) is not None
    deleted = await signed.http.post(f"{url}/delete", data={"csrf": csrf})
    assert deleted.headers["location"] == f"{signed.base}/webhooks?deleted=1"
    assert await store(signed).find(webhook.id) is None
    listed = await signed.http.get(deleted.headers["location"])
    assert 'id="deleted-notice"' in listed.text
    assert f"webhook-{elsewhere.id}" in listed.text
    assert (await signed.http.get(url)).status_code == 404


def test_triggers_in_words() -> None:
    """The list's triggers column: any change, named changes, several, none; the schedule in its largest unit;
    vehicle errors on or off."""

    def words(signals: list[str], **triggers: object) -> str:
        hook = Webhook(id="0" * 36, app_id="a", name="n", callback_url="http://h/", signals=tuple(signals),
                       triggers=Triggers.model_validate(triggers), created_at=0)  # fmt: skip
        return " · ".join(triggers_in_words(hook))

    assert words([SOC, ODOMETER]) == "when any of its 2 signals changes · vehicle errors"
    assert words([SOC]) == "when its signal changes · vehicle errors"
    assert words([SOC, ODOMETER], signal_changed=[ODOMETER], schedule_s=7200, vehicle_error=False) == (
        "when Traveled Distance changes · every 2 h · no vehicle errors"
    )
    assert words([SOC], signal_changed=[], schedule_s=90) == "never on a change · every 90 s · vehicle errors"


async def test_the_management_token_check_uses_the_apps_own(signed: Dash) -> None:
    """Another app's valid management token is refused as this app's (it would sign with the wrong key)."""
    other = await AppStore(signed.registry.redis, signed.registry.keys).create(
        "Other", ["http://x/cb"], signed.created.app.mode
    )
    csrf = await signed.csrf("/webhooks/new")
    answer = await signed.http.post(
        f"{signed.base}/webhooks", data=form(signed, csrf, url="http://127.0.0.1:9/h", token=other.management_token)
    )
    assert answer.status_code == 400
    assert 'id="error-token"' in answer.text
    assert await store(signed).of_app(signed.app_id) == []
