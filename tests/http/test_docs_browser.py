"""The interactive API docs page in a real browser, offline: Swagger UI renders the operations from this server's
own assets, and no request leaves 127.0.0.1."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Route

pytestmark = pytest.mark.browser
SCREENSHOT_DIR_ENV = "FLEETGATE_SCREENSHOTS"


def test_docs_page_renders_the_operations_with_nothing_from_outside(
    chromium: Browser, http_server: str, tmp_path: Path
) -> None:
    """/docs shows the API's operations (the token endpoint, the v3 signals); every request the page made went to
    127.0.0.1, and any other host would have failed."""
    outside: list[str] = []

    def only_local(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    context.route("**/*", only_local)
    try:
        response = page.goto(f"{http_server}/docs")
        assert response is not None
        assert response.status == 200
        page.wait_for_selector(".opblock", timeout=10_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert any(p.replace("\u200b", "") == "/oauth/token" for p in paths)
        assert any(p.replace("\u200b", "").startswith("/v3/vehicles/") for p in paths)
        assert page.locator(".swagger-ui .info .title").inner_text().startswith("fleetgate")
        shots = Path(os.environ.get(SCREENSHOT_DIR_ENV, str(tmp_path)))
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "docs.png"))
    finally:
        context.close()
    assert outside == []
