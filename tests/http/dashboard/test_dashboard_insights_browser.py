"""The Advice and What-if pages in a real browser (Debian's chromium through Playwright) against the app on a real
server: from the editor, tick a signal and press What-if to see its capable share; change the advice window and see
the permission table change. Each page is checked for horizontal overflow at 1280 px and, with
FLEETGATE_SCREENSHOTS=DIR, saved as a full-page shot (test_dashboard_browser.shoot).

The world is tests/insights/world.py's fleet, app and connections; its usage buckets are written directly here
(the counts of one hour now and of one hour two days ago), as the HTTP tests cover the gatekeeper and the usage
consumer that write them.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Browser, Page
from redis.typing import EncodableT, FieldT

from services.insights.counts import ALLOWED_BY_PERMISSION, ALLOWED_BY_TARGET, DENIED, NOT_CAPABLE, OUTCOME
from services.registry import CreatedApp, Registry
from services.settings import Settings
from services.streams import ensure_group
from tests.http.dashboard.test_dashboard_browser import WIDTH, dashboard_sign_in, shoot
from tests.http.test_connect_browser import run
from tests.insights.world import APP, build

pytestmark = pytest.mark.browser
FUEL = "internalcombustionengine-fuellevel"
NOW: dict[FieldT, EncodableT] = {
    f"{OUTCOME}|ALLOWED": 10,
    f"{ALLOWED_BY_PERMISSION}|read_odometer": 5,
    f"{ALLOWED_BY_TARGET}|odometer-traveleddistance": 5,
    f"{ALLOWED_BY_PERMISSION}|read_battery": 4,
    f"{ALLOWED_BY_TARGET}|tractionbattery-stateofcharge": 4,
    f"{ALLOWED_BY_PERMISSION}|read_charge": 1,
    f"{ALLOWED_BY_TARGET}|charge-ischarging": 1,
    f"{OUTCOME}|PERMISSION_DENIED": 4,
    f"{DENIED}|read_charge": 2,
    f"{DENIED}|control_security": 1,
    f"{DENIED}|read_tires": 1,
    f"{OUTCOME}|VEHICLE_NOT_CAPABLE": 3,
    f"{NOT_CAPABLE}|tractionbattery-stateofcharge|ICE|Ford": 2,
    f"{NOT_CAPABLE}|charge-ischarging|PHEV|Toyota": 1,
}
"""The current hour's bucket: read_vin never used, control_security only denied."""
TWO_DAYS_AGO: dict[FieldT, EncodableT] = {
    f"{OUTCOME}|ALLOWED": 9,
    f"{ALLOWED_BY_PERMISSION}|read_vin": 7,
    f"{ALLOWED_BY_TARGET}|vehicleidentification-vin": 7,
    f"{ALLOWED_BY_PERMISSION}|control_security": 2,
    f"{ALLOWED_BY_TARGET}|lock": 2,
}
"""A bucket 48 hours back: inside a 7-day window, outside a 1-day one."""


def world(settings: Settings) -> CreatedApp:
    """The designed world's fleet, app and connections, its usage group made and its two buckets written."""

    async def make(registry: Registry) -> CreatedApp:
        built = await build(registry)
        shard = registry.keys.shard(0)
        await ensure_group(registry.redis, shard.decisions, settings.usage_group)
        hour = int(time.time()) // 3600
        await registry.redis.hset(shard.usage(APP, hour), mapping=NOW)
        await registry.redis.hset(shard.usage(APP, hour - 48), mapping=TWO_DAYS_AGO)
        return built.created

    return run(make, settings)


@pytest.fixture
def page(chromium: Browser) -> Page:
    return chromium.new_page(viewport={"width": WIDTH, "height": 900})


def fits(page: Page, name: str) -> None:
    """The page shows without horizontal overflow at 1280 px (and is shot when FLEETGATE_SCREENSHOTS)."""
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{name} overflows by {overflow} px"
    shoot(page, name)


def test_tick_a_signal_then_what_if_shows_its_capable_share(
    page: Page, http_server: str, http_settings: Settings
) -> None:
    """Tick the fuel level in the editor and press What-if: its row shows 6 of the 10 vehicles that could connect
    (60.0 %, marked partial); ticking UNKNOWN recomputes over 11; Back returns to the editor with it still ticked,
    nothing published."""
    base = dashboard_sign_in(page, http_server, world(http_settings))
    page.check(f"#select-{FUEL}")
    page.click("#whatif-button")
    page.wait_for_selector("#target-table")
    assert page.url.startswith(f"{base}/access/whatif?")
    assert page.inner_text(f"#target-{FUEL} td.capable") == "6"
    assert page.inner_text(f"#target-{FUEL} td.share .pct") == "60.0 %"
    assert page.get_attribute(f"#target-{FUEL}", "data-level") == "partial"
    assert page.inner_text(f"#target-{FUEL} td.not-capable") == "40.0 %"
    assert page.inner_text("#connectable-share") == "90.9 %"
    fits(page, "9-whatif-edited")
    page.check("#try-UNKNOWN")
    page.click("#try-filters")
    page.wait_for_selector("#filters-used >> text=not saved")
    assert page.inner_text(f"#target-{FUEL} td.share .pct") == "54.5 %"
    page.click("#back-to-editor")
    page.wait_for_selector("#access-form")
    assert page.is_checked(f"#select-{FUEL}")
    assert "version 1" in page.inner_text("#current-version")


def test_changing_the_advice_window_changes_the_table(page: Page, http_server: str, http_settings: Settings) -> None:
    """Over 1 day read_vin is granted and unused and control_security only denied; over 7 days the older bucket
    counts: read_vin used 7 times, control_security twice. A bad window is said beside the field."""
    base = dashboard_sign_in(page, http_server, world(http_settings))
    page.click("#nav-advice")
    page.wait_for_selector("#permission-table")
    page.click("#window-24h")
    page.wait_for_url(f"{base}/advice?since=24h")
    assert page.inner_text("#perm-row-read_vin td.allowed") == "0"
    assert page.get_attribute("#perm-row-read_vin", "data-verdict") == "unused"
    assert page.inner_text("#perm-row-control_security td.allowed") == "0"
    page.click("#window-7d")
    page.wait_for_url(f"{base}/advice?since=7d")
    assert page.inner_text("#perm-row-read_vin td.allowed") == "7"
    assert page.get_attribute("#perm-row-read_vin", "data-verdict") == "in_use"
    assert page.inner_text("#perm-row-control_security td.allowed") == "2"
    assert page.inner_text("#outcome-ALLOWED") == "19\nALLOWED"
    fits(page, "8-advice-7d")
    page.fill("#since", "7x")
    page.click("#window-button")
    page.wait_for_selector("#window-error")
    assert "give a whole number and a unit" in page.inner_text("#window-error")
    fits(page, "8-advice-bad-window")
