"""Connect in a real browser (Debian's chromium through Playwright) against the app on a real server, driven with
the element ids automation of Smartcar's Connect uses (`button#continue-button`, `button#CHEVROLET.brand-list-item`,
`#username`, `#password`, `#sign-in-button`, `#approval-button`).

The app's redirect URI is `{server}/callback`, which the server does not serve: the browser lands on a 404 there,
and the test reads the redirect's query from `page.url`. Registry reads and writes run `asyncio.run` on a fresh
client in a worker thread (the sync Playwright API keeps an event loop on the main thread). Set
FLEETGATE_SCREENSHOTS=DIR to save each screen at 1280x800 and 375x740 (not committed).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, Page

from schemas.access import VehicleAccessConfig
from schemas.application import AppMode
from schemas.connection import Connection
from schemas.grant import ConnectionFilters, FilterPowertrain
from services.redis_client import connect
from services.registry import AppStore, Registry
from services.settings import Settings
from simulator.connect_test_mode import user_id
from tests.http.connect_flow import query

pytestmark = pytest.mark.browser
SCOPE = "required:read_vehicle_info read_odometer read_location"
SIZES = ((1280, 800), (375, 740))
SHOTS = os.environ.get("FLEETGATE_SCREENSHOTS")
T = TypeVar("T")


def run(make: Callable[[Registry], Coroutine[Any, Any, T]], settings: Settings) -> T:
    """`make(registry)` run to completion on its own loop and Redis client, in a worker thread."""

    async def main() -> T:
        client = connect(settings.redis_url)
        try:
            return await make(Registry(client, settings.keys))
        finally:
            await client.aclose()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


def new_app(settings: Settings, server: str, *, bev_only: bool = False) -> str:
    """A test-mode app redirecting to `{server}/callback`, its Vehicle Access config the odometer and location."""

    async def create(registry: Registry) -> str:
        created = await AppStore(registry.redis, registry.keys).create("Acme EV", [f"{server}/callback"], AppMode.TEST)
        config = VehicleAccessConfig.select(signals=["odometer-traveleddistance", "location-preciselocation"])
        await registry.publish_config(config, app_id=created.app.id)
        if bev_only:
            filters = ConnectionFilters(powertrains=frozenset({FilterPowertrain.BEV}))
            await registry.set_filters(filters, app_id=created.app.id)
        return created.app.id

    return run(create, settings)


def connections(settings: Settings, app_id: str, email: str) -> list[Connection]:
    async def read(registry: Registry) -> list[Connection]:
        return await registry.user_connections(app_id, user_id(email))

    return run(read, settings)


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    opened = chromium.new_page(viewport={"width": 1280, "height": 800})
    yield opened
    opened.close()


def shoot(page: Page, name: str) -> None:
    """Screenshots of the screen at both sizes, when FLEETGATE_SCREENSHOTS names a directory."""
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=f"{SHOTS}/{name}-{width}.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})


def authorize_url(server: str, app_id: str, **extra: str) -> str:
    params = {"response_type": "code", "client_id": app_id, "redirect_uri": f"{server}/callback", **extra}
    return f"{server}/oauth/authorize?{urlencode(params)}"


def sign_in(page: Page, email: str, *, brand: bool = True, shots: str = "") -> None:
    """Preamble, brand select (Chevrolet) and login, as Smartcar's Connect automation drives them."""
    if shots:
        shoot(page, f"{shots}1-preamble")
    page.click("button#continue-button")
    if brand:
        if shots:
            shoot(page, f"{shots}2-brand")
        page.click("button#CHEVROLET.brand-list-item")
    if shots:
        shoot(page, f"{shots}3-login")
    page.fill("#username", email)
    page.fill("#password", "anything")
    page.click("#sign-in-button")


def landed(page: Page, server: str) -> dict[str, str]:
    page.wait_for_url(re.compile(re.escape(f"{server}/callback")))
    return query(page.url)


def test_the_whole_flow_with_smartcars_element_ids(page: Page, http_server: str, http_settings: Settings) -> None:
    """Required boxes are checked and cannot be unchecked; an optional one unchecked is not granted; the browser
    lands on the redirect URI with code and state."""
    app_id = new_app(http_settings, http_server)
    page.goto(authorize_url(http_server, app_id, scope=SCOPE, state="st-1"))
    sign_in(page, "driver@example.com", shots="flow-")
    page.wait_for_selector("#approval-button")
    shoot(page, "flow-4-grant")
    required = page.locator('input[name="permission"][value="read_vehicle_info"]')
    assert required.is_disabled()
    assert required.is_checked()
    optional = page.locator('input[name="permission"][value="read_location"]')
    assert optional.is_enabled()
    assert optional.is_checked()
    optional.uncheck()
    page.click("#approval-button")
    params = landed(page, http_server)
    assert set(params) == {"code", "state"}
    assert params["state"] == "st-1"
    (connection,) = connections(http_settings, app_id, "driver@example.com")
    assert sorted(connection.permissions) == ["read_odometer", "read_vehicle_info"]


def test_deny_lands_with_access_denied(page: Page, http_server: str, http_settings: Settings) -> None:
    app_id = new_app(http_settings, http_server)
    page.goto(authorize_url(http_server, app_id, scope=SCOPE, state="d"))
    sign_in(page, "driver@example.com")
    page.click("#deny-button")
    params = landed(page, http_server)
    assert params == {"error": "access_denied", "error_description": "User denied access to application.", "state": "d"}
    assert connections(http_settings, app_id, "driver@example.com") == []


def test_a_filtered_out_powertrain_lands_with_vehicle_incompatible(
    page: Page, http_server: str, http_settings: Settings
) -> None:
    app_id = new_app(http_settings, http_server, bev_only=True)
    page.goto(authorize_url(http_server, app_id, scope=SCOPE))
    sign_in(page, "volt@example.com")
    params = landed(page, http_server)
    assert params["error"] == "vehicle_incompatible"
    assert (params["make"], params["model"]) == ("Chevrolet", "Volt")


def test_single_select_offers_radio_buttons(page: Page, http_server: str, http_settings: Settings) -> None:
    """With single_select=true the vehicles are radios: choosing one unchecks the other; one is connected."""
    app_id = new_app(http_settings, http_server)
    page.goto(authorize_url(http_server, app_id, scope=SCOPE, single_select="true"))
    sign_in(page, "3-vehicles@smartcar.com")
    page.wait_for_selector("#approval-button")
    shoot(page, "single-grant")
    radios = page.locator('input[name="vehicle"]')
    assert radios.count() == 3
    assert {radios.nth(i).get_attribute("type") for i in range(3)} == {"radio"}
    radios.nth(2).check()
    assert [radios.nth(i).is_checked() for i in range(3)] == [False, False, True]
    chosen = radios.nth(2).get_attribute("value")
    page.click("#approval-button")
    assert "code" in landed(page, http_server)
    assert [c.vehicle_id for c in connections(http_settings, app_id, "3-vehicles@smartcar.com")] == [chosen]


def test_reauthentication_lands_with_vehicle_id_and_state(
    page: Page, http_server: str, http_settings: Settings
) -> None:
    """Re-auth (no scope: the app's current config) re-authorizes the connection with what the owner left checked."""
    app_id = new_app(http_settings, http_server)
    page.goto(authorize_url(http_server, app_id, scope=SCOPE))
    sign_in(page, "driver@example.com")
    page.click("#approval-button")
    landed(page, http_server)
    (connection,) = connections(http_settings, app_id, "driver@example.com")
    params = {
        "response_type": "vehicle_id",
        "client_id": app_id,
        "vehicle_id": connection.vehicle_id,
        "redirect_uri": f"{http_server}/callback",
        "state": "re-1",
    }
    page.goto(f"{http_server}/oauth/reauthenticate?{urlencode(params)}")
    sign_in(page, "driver@example.com", brand=False)
    page.wait_for_selector("#approval-button")
    shoot(page, "reauth-grant")
    page.locator('input[name="permission"][value="read_location"]').uncheck()
    page.click("#approval-button")
    assert landed(page, http_server) == {"vehicle_id": connection.vehicle_id, "state": "re-1"}
    (reauthorized,) = connections(http_settings, app_id, "driver@example.com")
    assert reauthorized.id == connection.id
    assert list(reauthorized.permissions) == ["read_odometer"]


def test_error_pages_and_the_login_error(page: Page, http_server: str, http_settings: Settings) -> None:
    """An unknown client gets a page (no redirect); a refused login re-renders the login screen with the reason."""
    response = page.goto(authorize_url(http_server, "nobody"))
    assert response is not None
    assert response.status == 400
    assert "Unknown client_id" in page.inner_text("#error-message")
    shoot(page, "error-page")
    app_id = new_app(http_settings, http_server)
    page.goto(authorize_url(http_server, app_id, scope=SCOPE))
    sign_in(page, "not-an-email")
    # The browser's own check refuses a value that is not an email: the form is not even posted.
    assert page.locator("#username").evaluate("e => e.validity.valid") is False
    page.fill("#username", "driver@example.com")
    page.fill("#password", "")
    page.locator("#password").evaluate("e => e.removeAttribute('required')")
    page.click("#sign-in-button")
    page.wait_for_selector("#login-error")
    shoot(page, "login-error")
    assert "Enter an email address and a password." in page.inner_text("#login-error")
