"""The dashboard's other pages over HTTP (in-process, real redis-server): versions and their diff, Connection
Filters with the fleet's shares, and the Connect preview's URLs and grant screen."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from devtools.builders import make_vehicle
from schemas.access import VehicleAccessConfig
from schemas.grant import ConnectionFilters, FilterPowertrain
from schemas.powertrain import Powertrain
from tests.http.dashboard.conftest import ORIGIN, REDIRECT_URI, Dash

ODOMETER = "odometer-traveleddistance"
LOCATION = "location-preciselocation"
FLEET = {Powertrain.ICE: 5, Powertrain.HEV: 3, Powertrain.BEV: 6, Powertrain.PHEV: 4, Powertrain.UNKNOWN: 2}


async def publish(dash: Dash, **selection: list[str]) -> None:
    await dash.registry.publish_config(VehicleAccessConfig.select(**selection), dash.app_id)


def text_of(html: str, element_id: str) -> str:
    """The text of the element with this id (its tags stripped, spaces collapsed)."""
    found = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>(.*?)</\1>', html, re.S)
    assert found, f"no #{element_id}"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(2))).strip()


async def test_versions_list_newest_first_with_publish_times(signed: Dash) -> None:
    """Every version is listed, newest first, the current one marked, each with when it was published."""
    await publish(signed, signals=[ODOMETER])
    await publish(signed, signals=[ODOMETER, LOCATION])
    html = (await signed.http.get(f"{signed.base}/access/versions")).text
    assert html.index('id="version-2"') < html.index('id="version-1"')
    assert re.search(r'id="version-2">.*?current.*?<time datetime="20', html, re.S)
    assert len(re.findall(r"<time datetime=", html)) == 2


async def test_version_page_shows_its_selection(signed: Dash) -> None:
    """One version shows its signals with Required and its permissions; an unknown version answers 404."""
    await publish(signed, signals=[ODOMETER], commands=["lock"], required=["lock"])
    html = (await signed.http.get(f"{signed.base}/access/versions/1")).text
    assert ODOMETER in html
    assert 'id="perm-control_security" data-required="true"' in html
    for missing in ("2", "0", "x"):
        assert (await signed.http.get(f"{signed.base}/access/versions/{missing}")).status_code == 404


async def test_diff_names_added_removed_and_required_changes(signed: Dash) -> None:
    """The diff of two versions lists signals and commands added, removed, made required and optional, and the
    permissions gained and lost."""
    await publish(signed, signals=[ODOMETER, LOCATION], commands=["lock"], required=[ODOMETER])
    await publish(signed, signals=[LOCATION, "tractionbattery-stateofcharge"], commands=["lock"], required=["lock"])
    response = await signed.http.get(f"{signed.base}/access/versions/diff", params={"old": 1, "new": 2})
    html = response.text
    assert response.status_code == 200
    assert "tractionbattery-stateofcharge" in text_of(html, "diff-signals-added")
    assert ODOMETER in text_of(html, "diff-signals-removed")
    assert "lock" in text_of(html, "diff-commands-made-required")
    assert "read_battery" in text_of(html, "diff-permissions-added")
    assert "read_odometer" in text_of(html, "diff-permissions-removed")
    assert 'id="diff-commands-removed"' not in html


async def test_diff_of_a_missing_version_is_404(signed: Dash) -> None:
    """A diff naming a version that was never published answers the dashboard's 404."""
    await publish(signed, signals=[ODOMETER])
    response = await signed.http.get(f"{signed.base}/access/versions/diff", params={"old": 1, "new": 9})
    assert response.status_code == 404


async def test_filters_show_each_choices_share_of_the_fleet(signed: Dash) -> None:
    """Each choice shows its vehicles and share of the registered fleet (ICE counts HEV), and the total the saved
    filters admit."""
    n = 0
    for powertrain, count in FLEET.items():
        for _ in range(count):
            n += 1
            await signed.registry.add_vehicle(make_vehicle(powertrain, vehicle_id=f"v{n}"))
    filters = ConnectionFilters(powertrains=frozenset({FilterPowertrain.ICE, FilterPowertrain.PHEV}))
    await signed.registry.set_filters(filters, signed.app_id)
    html = (await signed.http.get(f"{signed.base}/filters")).text
    shares = dict(re.findall(r'id="choice-(\w+)">.*?class="share">([^<]+)<', html, re.S))
    assert shares == {"ICE": "40.0 %", "BEV": "30.0 %", "PHEV": "20.0 %", "UNKNOWN": "10.0 %"}
    assert re.search(r'id="allow-ICE"\s+checked', html)
    assert not re.search(r'id="allow-BEV"\s+checked', html)
    assert text_of(html, "admitted") == "Admitted: 14 of 20 registered vehicles ( 70.0 % )"  # ICE+HEV, PHEV, UNKNOWN


async def test_filters_show_then_save(signed: Dash) -> None:
    """ "Show" recomputes the share for the ticks without saving; "Save" stores them as `filters set` does."""
    await signed.registry.add_vehicle(make_vehicle(Powertrain.BEV, vehicle_id="b"))
    await signed.registry.add_vehicle(make_vehicle(Powertrain.ICE, vehicle_id="i"))
    csrf = await signed.csrf("/filters")
    shown = await signed.http.post(f"{signed.base}/filters", data={"csrf": csrf, "allow": "BEV", "action": "show"})
    assert "Admitted: 1 of 2" in text_of(shown.text, "admitted")
    assert await signed.registry.filters(signed.app_id) == ConnectionFilters()
    data = {"csrf": csrf, "allow": ["BEV"], "action": "save"}
    saved = await signed.http.post(f"{signed.base}/filters", data=data)
    assert saved.status_code == 303
    expected = ConnectionFilters(powertrains=frozenset({FilterPowertrain.BEV}), allow_unknown=False)
    assert await signed.registry.filters(signed.app_id) == expected
    refused = await signed.http.post(f"{signed.base}/filters", data={"allow": "ICE", "action": "save"})
    assert refused.status_code == 403
    assert await signed.registry.filters(signed.app_id) == expected


async def test_preview_connect_urls_with_and_without_scope(signed: Dash) -> None:
    """The Connect URL has the SDK's parameters for this app, without `scope`; with a valid override, the
    canonical scope."""
    await publish(signed, signals=[ODOMETER])
    params = {"signal": LOCATION, "scope": "read_odometer  required:read_location"}
    html = (await signed.http.get(f"{signed.base}/access/preview", params=params)).text
    plain = urlsplit(text_of(html, "url-without-scope").replace("&amp;", "&"))
    assert f"{plain.scheme}://{plain.netloc}{plain.path}" == f"{ORIGIN}/oauth/authorize"
    assert parse_qs(plain.query) == {
        "response_type": ["code"],
        "client_id": [signed.app_id],
        "approval_prompt": ["auto"],
        "mode": ["test"],
        "redirect_uri": [REDIRECT_URI],
    }
    scoped = parse_qs(urlsplit(text_of(html, "url-with-scope").replace("&amp;", "&")).query)
    assert scoped["scope"] == ["required:read_location read_odometer"]  # canonical: sorted by name


async def test_preview_reports_a_bad_scope(signed: Dash) -> None:
    """An override naming an unknown permission shows scope.py's error, and no URL with it."""
    html = (await signed.http.get(f"{signed.base}/access/preview", params={"scope": "read_odometr"})).text
    assert "read_odometr" in text_of(html, "scope-error")
    assert 'id="url-with-scope"' not in html


async def test_preview_grant_screen_is_connects_template_for_the_selection(signed: Dash) -> None:
    """The preview's frame renders grant.html for the selection: its permissions, required ones locked, and the
    example vehicle the Connection Filters exclude greyed."""
    await signed.registry.set_filters(ConnectionFilters(powertrains=frozenset({FilterPowertrain.BEV})), signed.app_id)
    params = {"signal": [ODOMETER, LOCATION], "required": ODOMETER}
    html = (await signed.http.get(f"{signed.base}/access/preview/grant", params=params)).text
    boxes = re.findall(r'name="permission" value="(\w+)" checked\s*(disabled)?', html)
    assert boxes == [("read_odometer", "disabled"), ("read_location", "")]
    assert 'id="approval-button"' in html
    assert html.count("Not compatible with Acme EV") == 2  # the ICE and PHEV examples
