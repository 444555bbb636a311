"""The vehicle-side error catalogue (schemas/problems.py): Smartcar's exact strings, fleetgate's own marked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from schemas.problems import RATE_LIMIT_PROBLEMS, UPSTREAM_PROBLEMS, VEHICLE_STATE_PROBLEMS, Problem, for_app

REFERENCE = Path(__file__).resolve().parent.parent.parent / "shared" / "reference" / "smartcar_connect_api.md"
# Entries whose strings Smartcar does not publish (the table's comments say so): fleetgate's wording.
FLEETGATE_WORDING = {("VEHICLE_STATE", "CHARGING_PLUG_CONNECTED"), ("UPSTREAM", "RATE_LIMIT")}
_ROW = re.compile(r"^\| (?P<type>[A-Z_]+) / (?P<code>[A-Z_]+) \| (?P<status>\d+) \| (?P<rest>.*)\|$")


def _reference_rows() -> dict[tuple[str, str], tuple[int, str, str | None, str]]:
    """(type, code) -> (status, description, resolution, message) from the reference's v2 error catalogue."""
    rows = {}
    previous_message = ""
    for line in REFERENCE.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if match is None:
            continue
        cells = [cell.strip() for cell in match["rest"].split(" | ")]
        description, resolution, message = cells[0], cells[1], cells[2]
        message = previous_message if message == "same" else message
        # A cell is `quoted`, possibly followed by a remark such as "(trailing space)".
        message = message[1 : message.rindex("`")] if message.startswith("`") else message
        previous_message = f"`{message}`"
        rows[match["type"], match["code"]] = (
            int(match["status"]),
            description.strip("`"),
            None if resolution == "`null`" else resolution.strip("`"),
            message,
        )
    return rows


def _every_problem() -> list[Problem]:
    return [*VEHICLE_STATE_PROBLEMS.values(), *UPSTREAM_PROBLEMS.values(), *RATE_LIMIT_PROBLEMS.values()]


@pytest.mark.skipif(not REFERENCE.exists(), reason="needs ../shared/reference")
def test_strings_are_smartcars_exactly() -> None:
    """Every entry but fleetgate's own has the reference's status, description, resolution and user message."""
    rows = _reference_rows()
    checked = 0
    for problem in _every_problem():
        key = (problem.type, problem.code or "")
        if key in FLEETGATE_WORDING:
            continue
        assert (problem.status_code, problem.description, problem.resolution, problem.suggested_user_message) == (
            rows[key]
        ), key
        checked += 1
    assert checked == len(_every_problem()) - len(FLEETGATE_WORDING)


def test_tables_are_keyed_by_code_with_smartcars_statuses() -> None:
    """VEHICLE_STATE is 409, UPSTREAM 502 with RETRY_LATER, RATE_LIMIT 429; each key is its problem's code."""
    assert {p.status_code for p in VEHICLE_STATE_PROBLEMS.values()} == {409}
    assert {(p.status_code, p.resolution) for p in UPSTREAM_PROBLEMS.values()} == {(502, "RETRY_LATER")}
    assert RATE_LIMIT_PROBLEMS["VEHICLE"].status_code == 429
    for table in (VEHICLE_STATE_PROBLEMS, UPSTREAM_PROBLEMS, RATE_LIMIT_PROBLEMS):
        assert all(key == problem.code for key, problem in table.items())
    assert {"ASLEEP", "UNREACHABLE", "DOOR_OPEN", "IN_MOTION", "LOW_BATTERY"} <= set(VEHICLE_STATE_PROBLEMS)
    assert {"INVALID_DATA", "NO_RESPONSE"} <= set(UPSTREAM_PROBLEMS)


def test_for_app_fills_in_the_app_name() -> None:
    """Smartcar's `<app name>` placeholder becomes the app's name; the error object keeps the rest."""
    problem = for_app(UPSTREAM_PROBLEMS["NO_RESPONSE"], "Acme Fleet")
    assert problem.suggested_user_message.startswith("Your car is temporarily unable to connect to Acme Fleet.")
    error = problem.for_request("req-1")
    assert error.doc_url == "https://smartcar.com/docs/errors/api-errors/upstream-errors#no-response"
    assert error.status_code == 502
