"""The Advice and What-if pages over HTTP (in-process, real redis-server) on the designed world of
tests/insights/world.py: its fleet, its app's connections and a load decided by the real gatekeeper and counted by
the usage consumer. Every figure is read from the page's cells (by element ids and classes) and asserted exactly."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import pytest

from schemas.access import VehicleAccessConfig
from services.http.dashboard.selection import Selection
from services.keyspace import Keys
from services.redis_client import Client
from services.registry import Registry
from services.settings import Settings
from tests.http.dashboard.conftest import Dash
from tests.http.dashboard.test_dashboard_pages import text_of
from tests.insights.world import NEXT, Runner, build, decide_load

ODOMETER = "odometer-traveleddistance"


def row_cells(html: str, row: str) -> dict[str, str]:
    """The cells of the table row whose opening tag holds `row` (`id="..."` or `data-name="..."`): each cell's
    first class -> its text (tags stripped, spaces collapsed)."""
    found = re.search(rf"<tr[^>]*\b{row}[^>]*>(.*?)</tr>", html, re.S)
    assert found, f"no row {row}"
    cells = re.findall(r'<t[dh][^>]*\bclass="([\w-]+)[^"]*"[^>]*>(.*?)</t[dh]>', found.group(1), re.S)
    return {name: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).strip() for name, text in cells}


def connectable(html: str) -> tuple[str, str]:
    """The what-if page's vehicles that could connect, and their share of the registered fleet."""
    return text_of(html, "connectable-total").split(" (")[0], text_of(html, "connectable-share")


NEXT_QUERY = Selection.of_config(NEXT).query()
"""The next config as the editor sends it to the what-if page."""


@pytest.fixture
async def world(
    dash: Dash, registry: Registry, redis: Client, keys: Keys, gatekeeper_settings: Settings, running_later: Runner
) -> Dash:
    """The designed world, its load decided and counted, and the dashboard signed in as its app (`dash`'s own app
    is another one)."""
    built = await build(registry)
    await decide_load(redis, keys, gatekeeper_settings, running_later, built.connections)
    signed = Dash(dash.http, registry, built.created)
    assert (await signed.sign_in()).status_code == 303
    return signed


async def test_advice_shows_the_worlds_figures_and_verdicts(world: Dash) -> None:
    """Per permission: the config's requirement, ALLOWED uses with the top target, denials, connections holding
    and lacking it, and the verdict with its suggested action; the outcomes; not-capable answers by target, make
    and powertrain; the aggregate caught up."""
    response = await world.http.get(f"{world.base}/advice", params={"since": "1h"})
    html = response.text
    assert response.status_code == 200
    expected = {
        "control_security": ("optional", "1", "1", "9 / 2", "unchecked"),
        "read_battery": ("optional", "3", "0", "10 / 1", "in_use"),
        "read_charge": ("optional", "1", "2", "7 / 4", "unchecked"),
        "read_odometer": ("required", "5", "1", "10 / 1", "stale_grants"),
        "read_vin": ("optional", "0", "0", "9 / 2", "unused"),
        "read_tires": ("not requested", "0", "1", "0 / 11", "unrequested"),
    }
    shown = {}
    for permission in expected:
        cells = row_cells(html, f'id="perm-row-{permission}"')
        verdict = re.search(rf'id="perm-row-{permission}" data-verdict="(\w+)"', html)
        assert verdict
        shown[permission] = (cells["requested"], cells["allowed"], cells["denied"], cells["holding"], verdict[1])
    assert shown == expected
    assert html.index('id="perm-row-read_vin"') < html.index('id="perm-row-read_tires"')  # requested ones first
    assert row_cells(html, 'id="perm-row-read_odometer"')["targets"] == f"{ODOMETER} 5"
    verdicts = {p: row_cells(html, f'id="perm-row-{p}"')["verdict"] for p in expected}
    assert verdicts["read_vin"] == "unused Granted but never used: candidate to drop."
    assert "mark it Required or explain why you need it" in verdicts["read_charge"]
    assert "older connections lack it: they must re-authenticate" in verdicts["read_odometer"]
    assert "Called but not requested" in verdicts["read_tires"]
    assert f'href="{world.base}/access?q=read_vin"' in html
    outcomes = {o: text_of(html, f"outcome-{o}") for o in ("ALLOWED", "PERMISSION_DENIED", "VEHICLE_NOT_CAPABLE")}
    assert outcomes == {"ALLOWED": "10 ALLOWED", "PERMISSION_DENIED": "5 PERMISSION_DENIED",
                        "VEHICLE_NOT_CAPABLE": "4 VEHICLE_NOT_CAPABLE"}  # fmt: skip
    rows = re.findall(r'<tr class="not-capable-row">(.*?)</tr>', html, re.S)
    assert [tuple(row_cells(f'<tr class="x">{r}</tr>', 'class="x"').values()) for r in rows] == [
        ("tractionbattery-stateofcharge", "Ford", "ICE", "2"),
        ("charge-ischarging", "Toyota", "PHEV", "1"),
        ("vehicleidentification-vin", "Tesla", "BEV", "1"),
    ]
    assert "The usage aggregate is up to date." in text_of(html, "aggregate-note")
    assert "Counts are by hour" in text_of(html, "aggregate-note")


async def test_the_note_says_how_far_behind_the_aggregate_is(world: Dash, redis: Client, keys: Keys) -> None:
    """A decision the usage consumer has not read yet is said in the note: the counts lack it."""
    await redis.xadd(keys.shard(0).decisions, {"data": b"{}"})
    html = (await world.http.get(f"{world.base}/advice")).text
    assert text_of(html, "aggregate-behind") == "The usage aggregate is 1 decision behind:"
    assert 'id="aggregate-current"' not in html


@pytest.mark.parametrize("since", ["7x", "0d", "99d", "-1d", "", "9" * 40 + "d"])
async def test_a_bad_window_is_said_inline(world: Dash, since: str) -> None:
    """A window that does not parse, is empty or reaches past the retention answers 400 with the error beside the
    field (the text kept in it, cut to 32 characters), and no table."""
    response = await world.http.get(f"{world.base}/advice", params={"since": since})
    assert response.status_code == 400
    error = text_of(response.text, "window-error")
    assert ("window" in error and "retention" not in error) or "further back than usage is kept" in error
    assert f'id="since" name="since" value="{since[:32]}"' in response.text
    assert 'id="permission-table"' not in response.text


async def test_the_window_presets_mark_the_current_one(world: Dash) -> None:
    """`24h` and `1d` are the same window: the 24h preset is marked current for either."""
    for since in ("24h", "1d"):
        html = (await world.http.get(f"{world.base}/advice", params={"since": since})).text
        assert re.search(r'id="window-24h"[^>]*class="current"', html)
        assert not re.search(r'id="window-7d"[^>]*class="current"', html)


async def test_another_apps_pages_answer_404(world: Dash, dash: Dash) -> None:
    """Signed in as the world's app, the advice and what-if of another (existing) app answer the dashboard's 404."""
    other = f"/dashboard/apps/{dash.app_id}"
    assert (await world.http.get(f"{other}/advice")).status_code == 404
    assert (await world.http.get(f"{other}/access/whatif")).status_code == 404


async def test_advice_without_decisions_says_where_they_are_counted(signed: Dash) -> None:
    """An app with a published config and no decision counted: the empty state names `fleetgate serve`; with
    nothing published, it says so."""
    html = (await signed.http.get(f"{signed.base}/advice")).text
    assert "advice-unpublished" in html
    await signed.registry.publish_config(VehicleAccessConfig.select(signals=[ODOMETER]), signed.app_id)
    html = (await signed.http.get(f"{signed.base}/advice")).text
    assert "fleetgate serve" in text_of(html, "advice-empty")
    assert 'id="permission-table"' not in html


async def test_what_if_of_an_edited_selection_shows_the_worlds_figures(world: Dash) -> None:
    """For the next config, from the editor's query fields: 10 of 11 vehicles could connect, per powertrain and
    make; each selection's capable share and expected not-capable rate (below 90 % marked partial), the one not
    published marked new; connections
    lacking a required permission, only optional ones, and per permission."""
    response = await world.http.get(f"{world.base}/access/whatif", params=NEXT_QUERY)
    html = response.text
    assert response.status_code == 200
    assert "the selection being edited" in text_of(html, "whatif-source")
    assert connectable(html) == ("10 of 11 registered vehicles", "90.9 %")

    def fleet(table: str) -> list[tuple[str, ...]]:
        section = html[html.index(f'id="{table}"') :]
        names = re.findall(r'class="fleet-row[^"]*" data-name="([^"]+)"', section[: section.index("</table>")])
        return [tuple(row_cells(html, f'data-name="{n}"').values())[:4] for n in names]

    assert fleet("by-powertrain") == [
        ("BEV", "4", "4", "40.0 %"),
        ("ICE", "3", "3", "30.0 %"),
        ("PHEV", "2", "2", "20.0 %"),
        ("HEV", "1", "1", "10.0 %"),
        ("UNKNOWN", "1", "0", "0.0 %"),
    ]
    assert fleet("by-make") == [
        ("Ford", "4", "4", "40.0 %"),
        ("Tesla", "4", "4", "40.0 %"),
        ("Toyota", "2", "2", "20.0 %"),
        ("Acme", "1", "0", "0.0 %"),
    ]
    targets = {}
    for key in (ODOMETER, "tractionbattery-stateofcharge", "charge-ischarging",
                "internalcombustionengine-fuellevel", "lock"):  # fmt: skip
        cells = row_cells(html, f'id="target-{key}"')
        level = re.search(rf'id="target-{key}" class="[^"]*" data-level="(\w+)"', html)
        assert level
        targets[key] = (cells["capable"], cells["share"], cells["not-capable"], level[1])
    assert targets == {
        ODOMETER: ("10", "100.0 %", "0.0 %", "ok"),
        "tractionbattery-stateofcharge": ("6", "60.0 % partial", "40.0 %", "partial"),
        "charge-ischarging": ("5", "50.0 % partial", "50.0 %", "partial"),
        "internalcombustionengine-fuellevel": ("6", "60.0 % partial", "40.0 %", "partial"),
        "lock": ("10", "100.0 %", "0.0 %", "ok"),
    }
    new = [key for key in targets if "new" in row_cells(html, f'id="target-{key}"')["name"].split()]
    assert new == ["internalcombustionengine-fuellevel"]  # the one selection not in the published version
    summary = [text_of(html, i) for i in ("connections-active", "lacking-required", "lacking-optional-only")]
    assert summary == ["11 active", "2 lack a required permission", "9 lack only optional ones"]
    lacking = {p: row_cells(html, f'id="lacking-{p}"') for p in ("control_security", "read_fuel", "read_odometer")}
    assert [(c["connections"], c["share"]) for c in lacking.values()] == [
        ("2", "18.2 %"),
        ("11", "100.0 %"),
        ("1", "9.1 %"),
    ]
    assert "required" in lacking["read_odometer"]["permission"]
    assert "optional" in lacking["read_fuel"]["permission"]


async def test_what_if_under_ticked_filters_and_by_default(world: Dash) -> None:
    """Ticked filters (BEV and UNKNOWN) give their own figures, said to be unsaved; without a selection the page
    computes the published version under the saved filters."""
    params = f"{NEXT_QUERY}&filters=chosen&allow=BEV&allow_unknown=on"
    html = (await world.http.get(f"{world.base}/access/whatif", params=params)).text
    assert connectable(html) == ("5 of 11 registered vehicles", "45.5 %")
    assert row_cells(html, 'id="target-tractionbattery-stateofcharge"')["share"] == "80.0 % partial"
    assert "not saved" in text_of(html, "filters-used")
    assert text_of(html, "filters-used").endswith("they admit BEV and UNKNOWN.")
    assert re.search(r'id="try-BEV"\s+checked', html)
    assert not re.search(r'id="try-ICE"\s+checked', html)
    html = (await world.http.get(f"{world.base}/access/whatif")).text
    assert "published version 1" in text_of(html, "whatif-source")
    assert connectable(html) == ("10 of 11 registered vehicles", "90.9 %")
    assert 'id="target-vehicleidentification-vin"' in html
    assert text_of(html, "filters-used").endswith("saved Connection Filters: they admit BEV, ICE, PHEV, not UNKNOWN.")


async def test_the_editors_what_if_button_carries_the_selection(world: Dash) -> None:
    """The editor's What-if action redirects to the what-if page with the posted selection, unsaved."""
    form: dict[str, list[str]] = {"csrf": [await world.csrf()], "action": ["whatif"]}
    for name, value in parse_qsl(NEXT_QUERY):
        form.setdefault(name, []).append(value)
    response = await world.http.post(f"{world.base}/access", data=form)
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == f"{world.base}/access/whatif"
    assert sorted(parse_qsl(location.query)) == sorted(parse_qsl(NEXT_QUERY))
    assert (await world.registry.config(app_id=world.app_id)).version == 1


async def test_what_if_of_a_bad_selection_or_nothing_published(signed: Dash) -> None:
    """An unknown signal is said (400); with nothing published and nothing selected, the empty state."""
    response = await signed.http.get(f"{signed.base}/access/whatif", params={"signal": "odometer-nope"})
    assert response.status_code == 400
    assert "odometer-nope" in text_of(response.text, "whatif-error")
    html = (await signed.http.get(f"{signed.base}/access/whatif")).text
    assert 'id="whatif-empty"' in html
