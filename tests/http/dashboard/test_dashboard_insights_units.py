"""The Advice and What-if pages' pure parts, without a server: what a permission's row says when advise() gives no
verdict, the top targets, and a selection's capable share, its not-capable rate and its level."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.access import VehicleAccessConfig
from schemas.grant import ConnectionFilters
from schemas.powertrain import Powertrain
from services.http.dashboard.advice import TOP_TARGETS, advice_view
from services.http.dashboard.whatif import what_if_view
from services.insights.advice import Advice, PermissionUse
from services.insights.grants import Grants
from services.insights.whatif import what_if_of
from services.insights.window import Window
from services.registry.fleet import VehicleGroup


def use(permission: str, *, allowed: int = 0, held: int = 0, by_target: dict[str, int] | None = None) -> PermissionUse:
    return PermissionUse(permission, True, False, allowed, by_target or {}, 0, held, 4 - held, None)


def advice_of(*uses: PermissionUse) -> Advice:
    window = Window.ending(timedelta(hours=2), datetime(2026, 1, 15, 10, 30, tzinfo=UTC))
    return Advice("app", 1, window, 4, {"ALLOWED": 3}, list(uses), [], True, 0, 35)


def test_a_permission_without_a_verdict_is_in_use_or_not_held_yet() -> None:
    """No verdict with ALLOWED uses reads "in use"; with none (no connection holds it) "not held yet"."""
    view = advice_view(advice_of(use("read_odometer", allowed=3, held=4), use("read_vin")))
    assert [(p["verdict"], p["badge"]) for p in view["permissions"]] == [
        ("in_use", "in use"),
        ("not_held", "not held yet"),
    ]
    assert view["window"] == {"since": "2h", "hours": 3, "start": "2026-01-15 08:00", "end": "2026-01-15 11:00"}
    assert [o["count"] for o in view["outcomes"]] == [3, 0, 0, 0, 0]


def test_top_targets_are_the_most_used_and_the_rest_counted() -> None:
    """The targets with the most uses come first (ties by name), at most TOP_TARGETS, the others counted."""
    by_target = {"a": 1, "b": 5, "c": 5, "d": 2, "e": 1}
    (row,) = advice_view(advice_of(use("read_location", allowed=14, held=4, by_target=by_target)))["permissions"]
    assert [(t["target"], t["count"]) for t in row["top_targets"]] == [("b", 5), ("c", 5), ("d", 2)]
    assert (TOP_TARGETS, row["more_targets"]) == (3, 2)


@pytest.mark.parametrize(
    ("capable", "connectable", "expected"),
    [
        (2, 3, ("66.7 %", "33.3 %", "partial")),
        (1, 3, ("33.3 %", "66.7 %", "low")),
        (9, 10, ("90.0 %", "10.0 %", "ok")),
        (0, 0, ("n/a", "n/a", "none")),
    ],
)
def test_a_selections_share_its_rate_and_level(capable: int, connectable: int, expected: tuple[str, ...]) -> None:
    """The capable share and the not-capable rate come from one rounding (they add up to 100 %); below 50 % is
    low, below 90 % partial; with no vehicle able to connect there is no share."""
    groups = [VehicleGroup("Tesla", Powertrain.BEV, frozenset({"charge-ischarging"}), capable)]
    groups.append(VehicleGroup("Ford", Powertrain.ICE, frozenset(), connectable - capable))
    config = VehicleAccessConfig.select(signals=["charge-ischarging"])
    result = what_if_of("app", config, ConnectionFilters(), [g for g in groups if g.vehicles], Grants())
    (row,) = what_if_view(result)["targets"]
    assert (row["capable_pct"], row["not_capable_pct"], row["level"]) == expected
