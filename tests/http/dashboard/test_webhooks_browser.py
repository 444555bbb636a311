"""The dashboard's Webhooks pages in a real browser (Debian's chromium through Playwright) against the app on a real
server and the test receiver (its own event loop in a thread): a webhook created from the form is verified by the
receiver's answer, its page shows a delivery log row written by services/webhooks/log.py, and it is deleted
through the confirmation; a wrong token is refused beside its field; every page fits 1280 px
(FLEETGATE_SCREENSHOTS=DIR saves them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from schemas.webhooks import Webhook
from services.registry import Registry
from services.settings import Settings
from services.webhooks.log import LogEntry, Records, now_ms
from services.webhooks.store import WebhookStore
from tests.http.dashboard.test_dashboard_browser import ODOMETER, WIDTH, dashboard_sign_in, new_app
from tests.http.dashboard.test_dashboard_browser_operations import no_overflow
from tests.http.test_connect_browser import run
from tests.webhooks.receiver import receiving_in_thread

pytestmark = pytest.mark.browser
SOC = "tractionbattery-stateofcharge"


@pytest.fixture
def page(chromium: Browser, http_server: str) -> Iterator[Page]:
    del http_server  # requested so that it stops after this page closes
    opened = chromium.new_page(viewport={"width": WIDTH, "height": 800})
    yield opened
    opened.close()


def webhooks_of(settings: Settings, app_id: str) -> list[Webhook]:
    async def read(registry: Registry) -> list[Webhook]:
        return await WebhookStore(registry.redis, registry.keys).of_app(app_id)

    return run(read, settings)


def log_a_delivery_and_a_dead_letter(settings: Settings, webhook: Webhook) -> None:
    """What the delivery worker writes: one delivered log entry and one dead letter of the webhook."""

    async def write(registry: Registry) -> None:
        records = Records(registry.redis, registry.keys, 100)
        entry = LogEntry("e7b1c0de-0000-4000-8000-000000000001", "veh-1", "VEHICLE_STATE", "FIRST_DELIVERY",
                         "delivered", 1, 204, 18.0, None, now_ms())  # fmt: skip
        await records.log(webhook.id, entry)
        event = {"event_id": "e7b1c0de-0000-4000-8000-000000000002", "webhook_id": webhook.id, "vehicle_id": "veh-1",
                 "event_type": "VEHICLE_STATE", "reason": "SCHEDULED"}  # fmt: skip
        await records.dead_letter(reason="HTTP 503: not 2xx", shard=0, entry_id="1-0", event=event, attempts=9)

    run(write, settings)


def test_create_verify_see_the_log_and_delete(page: Page, http_server: str, http_settings: Settings) -> None:
    """The empty list links to the form; searching narrows the checklist; Create runs VERIFY against the receiver
    and the page says verified; a log row and a dead letter written meanwhile show on the page; Delete asks first,
    then deletes."""
    created = new_app(http_settings, http_server)
    base = dashboard_sign_in(page, http_server, created)
    page.click("#nav-webhooks")
    page.wait_for_selector("#no-webhooks")
    no_overflow(page, "wh-1-empty-list")
    page.click("#new-webhook")
    page.fill("#search", "charge")
    assert page.is_visible(f"#row-{SOC}")
    assert page.is_hidden(f"#row-{ODOMETER}")
    page.fill("#search", "")
    assert page.is_disabled(f"#change-{SOC}")  # On change means something only for a signal in use
    page.check(f"#select-{SOC}")
    page.check(f"#select-{ODOMETER}")
    assert page.is_enabled(f"#change-{SOC}")
    assert page.inner_text("#picked-count") == "2 signals ticked"
    page.uncheck(f"#change-{ODOMETER}")
    no_overflow(page, "wh-2-new-form")
    with receiving_in_thread(created.management_token) as receiver:
        page.fill("#name", "Battery and odometer")
        page.fill("#url", f"{receiver.url}/hooks")
        page.fill("#schedule", "3600")
        page.fill("#token", created.management_token)
        page.click("#create-button")
        page.wait_for_selector("#verify-outcome")
        assert page.get_attribute("#verify-outcome", "data-verified") == "true"
        assert len(receiver.verifies) == 1
    (webhook,) = webhooks_of(http_settings, created.app.id)
    assert (webhook.verified, webhook.signals, webhook.change_codes) == (True, (SOC, ODOMETER), (SOC,))
    assert page.url == f"{base}/webhooks/{webhook.id}?created=1"
    no_overflow(page, "wh-4-created")
    log_a_delivery_and_a_dead_letter(http_settings, webhook)
    page.goto(f"{base}/webhooks/{webhook.id}")
    row = page.locator('#deliveries tr[data-event-id="e7b1c0de-0000-4000-8000-000000000001"]')
    assert row.locator("td").nth(4).inner_text() == "delivered"
    assert "HTTP 503: not 2xx" in page.inner_text("#dead-letters")
    no_overflow(page, "wh-5-page-with-log")
    page.goto(f"{base}/webhooks")
    assert "verified" in page.inner_text(f"#webhook-{webhook.id} .verify-state").lower()
    no_overflow(page, "wh-6-list")
    assert created.management_token not in page.content()
    page.click(f"#webhook-{webhook.id} a")
    page.click("#delete-button")
    page.wait_for_selector("#confirm-delete")
    no_overflow(page, "wh-7-delete-confirm")
    assert len(webhooks_of(http_settings, created.app.id)) == 1  # the confirmation changed nothing yet
    page.click("#confirm-delete")
    page.wait_for_selector("#deleted-notice")
    assert webhooks_of(http_settings, created.app.id) == []
    assert page.is_visible("#no-webhooks")


def test_a_wrong_token_is_refused_beside_its_field(page: Page, http_server: str, http_settings: Settings) -> None:
    """A token that is not the app's is said in one line under the token field; the form comes back with the
    ticks and values as posted but the token field empty, and nothing is created."""
    created = new_app(http_settings, http_server)
    base = dashboard_sign_in(page, http_server, created)
    page.goto(f"{base}/webhooks/new")
    page.check(f"#select-{SOC}")
    page.fill("#name", "Battery")
    page.fill("#url", "http://127.0.0.1:9/hooks")
    page.fill("#token", "amt_not-the-right-one")
    page.click("#create-button")
    page.wait_for_selector("#error-token")
    assert (
        page.inner_text("#error-token") == "That is not this application's management token (the one you sign in with)."
    )
    assert page.locator(".field-error").count() == 1
    assert page.is_checked(f"#select-{SOC}")
    assert (page.input_value("#name"), page.input_value("#token")) == ("Battery", "")
    assert webhooks_of(http_settings, created.app.id) == []
    no_overflow(page, "wh-3-wrong-token")
