"""Connect's templates rendered with jinja2 (devtools/connect_pages.py samples): the element ids and form fields
the official SDK's browser helpers and the Connect flow rely on."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest

from devtools.connect_pages import sample_contexts
from services.http.templating import environment


class Elements(HTMLParser):
    """Every element's tag and attributes, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))

    def by_id(self, element_id: str) -> tuple[str, dict[str, str | None]]:
        matches = [e for e in self.found if e[1].get("id") == element_id]
        assert len(matches) == 1, f"{len(matches)} elements with id {element_id!r}"
        return matches[0]

    def named(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for _, attrs in self.found if attrs.get("name") == name]


def render(name: str, **overrides: Any) -> Elements:
    context = sample_contexts(single_select=overrides.pop("single_select", False))[name] | overrides
    parser = Elements()
    parser.feed(environment().get_template(name).render(context))
    return parser


def test_preamble_has_the_continue_button_in_a_form() -> None:
    """button#continue-button submits a form that posts the hidden flow id."""
    page = render("preamble.html")
    assert page.by_id("continue-button")[0] == "button"
    assert any(tag == "form" and attrs.get("method") == "post" for tag, attrs in page.found)
    assert page.named("flow")[0]["value"] == "f-sample"


def test_brand_select_has_one_button_per_brand() -> None:
    """button#CHEVROLET.brand-list-item posts make=CHEVROLET; each brand has its button; a no-brand link."""
    page = render("brand_select.html")
    tag, attrs = page.by_id("CHEVROLET")
    assert (tag, attrs["class"], attrs["name"], attrs["value"]) == ("button", "brand-list-item", "make", "CHEVROLET")
    assert {a["value"] for a in page.named("make")} >= {"TESLA", "FORD", "CHEVROLET", "AUDI"}
    assert page.by_id("no-brand-link")[1]["href"] == "/oauth/no-brand"


def test_login_has_username_password_and_sign_in() -> None:
    """#username (type email, name username), #password (name password), #sign-in-button, and the error shown."""
    page = render("login.html")
    assert page.by_id("username")[1].items() >= {"type": "email", "name": "username"}.items()
    assert page.by_id("password")[1]["name"] == "password"
    assert page.by_id("sign-in-button")[0] == "button"
    page.by_id("login-error")
    with pytest.raises(AssertionError):
        render("login.html", error=None).by_id("login-error")


def test_grant_checkboxes_required_locked_optional_checked() -> None:
    """Required permissions are checked and disabled, optional ones checked and enabled; vehicles are checkboxes;
    approve and deny submit the same form with action=approve|deny; flow and nonce are posted."""
    page = render("grant.html")
    permissions = {a["value"]: a for a in page.named("permission")}
    for name in ("read_vehicle_info", "read_battery"):
        assert "checked" in permissions[name]
        assert "disabled" in permissions[name]
    for name in ("read_charge", "control_charge"):
        assert "checked" in permissions[name]
        assert "disabled" not in permissions[name]
    vehicles = page.named("vehicle")
    assert len(vehicles) == 3
    assert all(v["type"] == "checkbox" and "checked" in v for v in vehicles)
    assert page.by_id("approval-button")[1].items() >= {"name": "action", "value": "approve"}.items()
    assert page.by_id("deny-button")[1].items() >= {"name": "action", "value": "deny"}.items()
    assert (page.named("flow")[0]["value"], page.named("nonce")[0]["value"]) == ("f-sample", "n-sample")


def test_grant_single_select_uses_radios_and_other_wording() -> None:
    """With single_select the vehicles are radios and the approval wording changes."""
    context = sample_contexts(single_select=True)["grant.html"]
    html = environment().get_template("grant.html").render(context)
    page = Elements()
    page.feed(html)
    assert all(v["type"] == "radio" for v in page.named("vehicle"))
    assert "Allow for this vehicle" in html


def test_error_page_shows_the_message_escaped() -> None:
    """The error page shows its message, autoescaped, with no form and no redirect."""
    html = (
        environment()
        .get_template("error.html")
        .render(sample_contexts()["error.html"] | {"message": "400: <script>x</script>"})
    )
    assert "400: &lt;script&gt;x&lt;/script&gt;" in html
    assert "<form" not in html
    assert "http-equiv" not in html


@pytest.mark.parametrize("name", sorted(sample_contexts()))
def test_every_template_renders_with_its_documented_context(name: str) -> None:
    """Each template renders under StrictUndefined with the variables its top comment lists, and links only
    /static assets (nothing from the internet)."""
    html = environment().get_template(name).render(sample_contexts()[name])
    assert 'href="/static/connect.css"' in html
    assert "http://" not in html
    assert "https://" not in html
