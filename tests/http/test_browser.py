"""The browser infrastructure: Debian's chromium, through Playwright, against the app on a real server."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Browser

pytestmark = pytest.mark.browser


def test_chromium_reads_healthz_and_the_stylesheet(chromium: Browser, http_server: str) -> None:
    """A real browser gets /healthz's JSON and the stylesheet from the running server."""
    page = chromium.new_page()
    try:
        response = page.goto(f"{http_server}/healthz")
        assert response is not None
        assert response.status == 200
        assert json.loads(page.inner_text("body")) == {"status": "ok"}
        css = page.goto(f"{http_server}/static/connect.css")
        assert css is not None
        assert css.status == 200
    finally:
        page.close()
