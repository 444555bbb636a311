"""The dashboard's Connections and Live decisions pages in a real browser (Debian's chromium through Playwright)
against the app on a real server: revoking a connection through the confirmation, seen as its `connection.revoked`
event on the stream; the live page's counts rising while decisions are published, and its filter narrowing the
latest decisions; each page at 1280 px without horizontal overflow (FLEETGATE_SCREENSHOTS=DIR saves them)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import cast

import pytest
from playwright.sync_api import Browser, Page

from devtools.decisions import decision_payloads
from schemas.messages import ConnectionEventMessage, ConnectionEventType
from schemas.powertrain import Powertrain
from schemas.vehicle import Vehicle
from services.registry import ConnectService, CreatedApp, Registry
from services.settings import Settings
from tests.http.dashboard.test_dashboard_browser import WIDTH, dashboard_sign_in, new_app, shoot
from tests.http.dashboard.test_dashboard_live import publish
from tests.http.test_connect_browser import run

pytestmark = pytest.mark.browser
FLEET = [("Tesla", "Model 3", Powertrain.BEV), ("Toyota", "Prius", Powertrain.HEV), ("Ford", "F-150", Powertrain.ICE),
         ("BMW", "330e", Powertrain.PHEV), ("Kia", "EV6", Powertrain.BEV)]  # fmt: skip


@pytest.fixture
def page(chromium: Browser, http_server: str) -> Iterator[Page]:
    """A page at 1280 px, closed after the test (its event stream with it) before the server stops."""
    del http_server  # requested so that it stops after this page closes
    opened = chromium.new_page(viewport={"width": WIDTH, "height": 900})
    yield opened
    opened.close()


def with_connections(settings: Settings, created: CreatedApp, count: int, *, revoked: int = 0) -> list[str]:
    """`count` vehicles of FLEET's makes, each connected by a user of its own (the first `revoked` then revoked, the
    second re-authorized); the connection ids, oldest first."""

    async def make(registry: Registry) -> list[str]:
        service = ConnectService(registry)
        made = []
        for n in range(count):
            make_name, model, powertrain = FLEET[n % len(FLEET)]
            vin = f"1FG{n:014d}"
            await registry.add_vehicle(Vehicle.with_defaults(id=f"veh-{n}", vin=vin, make=make_name, model=model,
                                                             year=2020 + n % 5, powertrain=powertrain))  # fmt: skip
            connection = await service.connect(created.app.id, f"user-{n}", f"veh-{n}")
            made.append(connection.id)
        for connection_id in made[:revoked]:
            await service.revoke(connection_id)
        if count > revoked:
            await service.reauthorize(made[revoked], scope="read_odometer read_vin")
        return made

    return run(make, settings)


def revoked_events(settings: Settings, connection_id: str) -> list[ConnectionEventMessage]:
    async def read(registry: Registry) -> list[ConnectionEventMessage]:
        stream = registry.keys.shard_of_connection(connection_id).connection_events
        entries = cast("list[tuple[bytes, dict[bytes, bytes]]]", await registry.redis.xrange(stream))
        events = [ConnectionEventMessage.model_validate_json(fields[b"data"]) for _, fields in entries]
        return [e for e in events if e.connection_id == connection_id and e.type is ConnectionEventType.REVOKED]

    return run(read, settings)


def publish_decisions(settings: Settings, app_ids: list[str], count: int, seed: int) -> list[dict[str, str]]:
    """Publish `count` decisions of these apps as the gatekeeper would; each one's fields."""
    payloads = decision_payloads(app_ids, count, seed=seed)

    async def write(registry: Registry) -> None:
        await publish(registry.redis, registry.keys, payloads)

    run(write, settings)
    return [json.loads(p) for p in payloads]


def no_overflow(page: Page, name: str) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{name} overflows by {overflow} px"
    shoot(page, name)


def test_revoke_from_the_page_writes_its_event(page: Page, http_server: str, http_settings: Settings) -> None:
    """From the list to the connection, Revoke, the confirmation, Revoke: the page says revoked, the
    connection-events stream holds its one `connection.revoked` event, and the list shows it revoked."""
    created = new_app(http_settings, http_server)
    (connection_id,) = with_connections(http_settings, created, 1)
    base = dashboard_sign_in(page, http_server, created)
    page.goto(f"{base}/connections")
    page.click(f"#connection-{connection_id} a")
    page.click("#revoke-button")
    page.wait_for_selector("#confirm-revoke")
    assert revoked_events(http_settings, connection_id) == []  # the confirmation changed nothing yet
    page.click("#confirm-revoke")
    page.wait_for_selector("#revoked-notice")
    assert "revoked" in page.inner_text("#connection-status").lower()
    (event,) = revoked_events(http_settings, connection_id)
    assert event.app_id == created.app.id
    assert event.user_id == "user-0"
    assert page.locator("#revoke-button").count() == 0
    page.goto(f"{base}/connections?status=revoked")
    assert page.locator(f"#connection-{connection_id}").is_visible()


def test_live_page_counts_rise_and_the_filter_narrows(page: Page, http_server: str, http_settings: Settings) -> None:
    """While decisions are published the totals rise to exactly the app's; ticking PERMISSION_DENIED reopens the
    feed (the address bar follows) and the latest decisions are all PERMISSION_DENIED; a vehicle text narrows them
    to that vehicle's."""
    created = new_app(http_settings, http_server)
    app_id = created.app.id
    base = dashboard_sign_in(page, http_server, created)
    page.goto(f"{base}/live")
    page.wait_for_selector('#feed-state[data-state="open"]')
    assert page.is_visible("#waiting")
    first = publish_decisions(http_settings, [app_id, "someone-else"], 3000, seed=21)
    mine = sum(1 for d in first if d["app_id"] == app_id)
    page.wait_for_function(f"document.getElementById('total-all').dataset.value === '{mine}'")
    shoot(page, "live-2-flowing")
    second = publish_decisions(http_settings, [app_id], 1000, seed=22)
    page.wait_for_function(f"document.getElementById('total-all').dataset.value === '{mine + len(second)}'")
    assert page.is_hidden("#waiting")
    vehicles = {row.get_attribute("data-outcome") for row in page.locator("#recent tr.decision").all()}
    assert len(vehicles) > 1  # every outcome shows up before filtering
    page.check("#outcome-PERMISSION_DENIED")
    page.wait_for_function("document.querySelector('#recent tbody').rows.length === 0")  # a new feed, from now
    assert "outcome=PERMISSION_DENIED" in page.url
    page.wait_for_selector('#feed-state[data-state="open"]')
    publish_decisions(http_settings, [app_id], 1000, seed=23)
    page.wait_for_selector("#recent tr.decision")
    outcomes = {row.get_attribute("data-outcome") for row in page.locator("#recent tr.decision").all()}
    assert outcomes == {"PERMISSION_DENIED"}
    page.fill("#vehicle", f"{app_id}-v7")
    page.press("#vehicle", "Enter")
    page.wait_for_function("document.querySelector('#recent tbody').rows.length === 0")
    page.wait_for_selector('#feed-state[data-state="open"]')
    publish_decisions(http_settings, [app_id], 3000, seed=24)
    page.wait_for_selector("#recent tr.decision")
    shown = page.locator("#recent tr.decision td:nth-child(4)").all_inner_texts()
    assert shown
    assert set(shown) == {f"{app_id}-v7"}


def test_operations_pages_fit_1280_px(page: Page, http_server: str, http_settings: Settings) -> None:
    """The connections list (with data, empty, searched), a connection with its history, the revoke confirmation
    and the live page waiting for decisions render at 1280 px without horizontal overflow."""
    created = new_app(http_settings, http_server)
    base = dashboard_sign_in(page, http_server, created)
    page.goto(f"{base}/connections")
    page.wait_for_selector("#no-connections")
    no_overflow(page, "conn-2-empty")
    made = with_connections(http_settings, created, 12, revoked=2)
    page.goto(f"{base}/live")
    no_overflow(page, "live-1-waiting")
    pages = {
        "conn-1-list": f"{base}/connections",
        "conn-3-searched": f"{base}/connections?q=tesla&status=active",
        "conn-4-revoked": f"{base}/connections/{made[0]}",
        "conn-5-reauthorized": f"{base}/connections/{made[2]}",
        "conn-6-revoke-confirm": f"{base}/connections/{made[3]}/revoke",
    }
    for name, url in pages.items():
        page.goto(url)
        no_overflow(page, name)
