"""Connect's pages rendered with sample data, and screenshots of them in Debian's chromium.

`python -m devtools.connect_pages OUT_DIR` writes each page's HTML and a screenshot at 1280x800 and 375x740
(keep them out of git). The fast-tier tests render the same samples (tests/http/test_templates.py).
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Any

from schemas.catalog import get_catalog
from services.http.brands import brands
from services.http.templating import environment

WIDTHS = ((1280, 800), (375, 740))


def _permission(name: str, *, required: bool) -> dict[str, Any]:
    return {"name": name, "description": get_catalog().permission(name).description, "required": required}


def _vehicles(count: int) -> list[dict[str, Any]]:
    models = [("CHEVROLET", "Volt", 2019), ("TESLA", "Model 3", 2022), ("FORD", "Mustang Mach-E", 2023)]
    return [
        {"id": f"sample-{n}", "make": make, "model": model, "year": year, "vin": f"0SCSAMPLE000{n:05d}"}
        for n, (make, model, year) in enumerate(models[:count])
    ]


def sample_contexts(*, single_select: bool = False) -> dict[str, dict[str, Any]]:
    """Template name -> a context with every variable its top comment lists."""
    app = {"app_name": "Acme EV Charging"}
    hidden = {"flow": "f-sample"}
    return {
        "preamble.html": app
        | {"action": "/oauth/authorize/continue", "hidden": hidden, "permissions_summary": None, "step": None},
        "brand_select.html": app
        | {"action": "/oauth/brand", "hidden": hidden, "brands": list(brands()), "no_brand_url": "/oauth/no-brand"},
        "login.html": app
        | {
            "brand_name": "Chevrolet",
            "action": "/oauth/login",
            "hidden": hidden,
            "error": "The email or password is incorrect.",
            "email": "owner000001@fleet.fleetgate.test",
            "hint": "Test mode: any email and password sign in.",
            "back_url": "/oauth/connect/back?flow=f-sample",
        },
        "grant.html": app
        | {
            "action": "/oauth/grant",
            "flow": "f-sample",
            "nonce": "n-sample",
            "vehicles": _vehicles(1 if single_select else 3),
            "single_select": single_select,
            "permissions": [
                _permission("read_vehicle_info", required=True),
                _permission("read_battery", required=True),
                _permission("read_charge", required=False),
                _permission("control_charge", required=False),
            ],
            "error": None,
        },
        "error.html": app
        | {
            "title": "Something went wrong",
            "message": "400: Application not authorized to request permission(s): control_trunk",
            "back_url": None,
        },
    }


def render_samples() -> dict[str, str]:
    pages = {name: environment().get_template(name).render(ctx) for name, ctx in sample_contexts().items()}
    pages["grant_single.html"] = (
        environment().get_template("grant.html").render(sample_contexts(single_select=True)["grant.html"])
    )
    return pages


def screenshot(out: Path) -> None:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - a dev extra, only for screenshots

    css = resources.files("services.http").joinpath("static/connect.css").read_text()
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        for name, html in render_samples().items():
            (out / name).write_text(html)
            for width, height in WIDTHS:
                page = browser.new_page(viewport={"width": width, "height": height})
                page.set_content(html.replace('<link rel="stylesheet" href="/static/connect.css">', ""))
                page.add_style_tag(content=css)
                page.screenshot(path=str(out / f"{Path(name).stem}-{width}.png"), full_page=True)
                page.close()
        browser.close()


if __name__ == "__main__":
    screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else "connect-pages"))
