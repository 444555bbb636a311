"""The live feed's arithmetic without Redis: decoding the gatekeeper's decisions, the subscriber's filter, and the
window that turns counts into one message a tick (skipped ticks fold into the next)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from devtools.decisions import decision_payloads
from schemas.messages import DecisionMessage
from services.http.live_window import OUTCOMES, RECENT, LiveDecision, LiveFilter, Window, decode_decision


def message(raw: bytes | None) -> dict[str, Any]:
    assert raw is not None
    assert raw.startswith(b"data: ")
    assert raw.endswith(b"\n\n")
    parsed: dict[str, Any] = json.loads(raw[len(b"data: ") :])
    return parsed


def decision(outcome: str = "ALLOWED", target: str = "odometer-traveleddistance", vehicle: str = "v1") -> LiveDecision:
    return LiveDecision(outcome=outcome, app_id="app", target=target, vehicle_id=vehicle)


def test_decoder_reads_what_the_gatekeeper_writes() -> None:
    """Each field the feed shows decodes as the contract's model reads it, the error as TYPE/CODE."""
    for payload in decision_payloads(["a", "b"], 200, seed=3):
        reference = DecisionMessage.model_validate_json(payload)
        live = decode_decision(payload)
        assert (live.outcome, live.app_id, live.target, live.vehicle_id) == (
            reference.outcome.value,
            reference.app_id,
            reference.target,
            reference.vehicle_id,
        )
        error = reference.error
        assert live.shown()["error"] == (None if error is None else "/".join(filter(None, [error.type, error.code])))


def test_decoder_refuses_what_is_not_a_decision() -> None:
    """Not JSON, or JSON without an outcome, is a DecodeError (the hub skips it)."""
    for payload in (b"", b"not json", b'{"app_id":"a"}', b'{"outcome":3}'):
        with pytest.raises(msgspec.DecodeError):
            decode_decision(payload)


def test_filter_parse_refuses_unknown_outcomes_and_long_texts() -> None:
    """An outcome that is not one of the five, or a text over 128 characters, is a ValueError naming it."""
    with pytest.raises(ValueError, match="'GRANTED'"):
        LiveFilter.parse(["ALLOWED", "GRANTED"], "", "")
    with pytest.raises(ValueError, match="128"):
        LiveFilter.parse([], "x" * 129, "")


def test_filter_admits_outcomes_and_texts_case_insensitively() -> None:
    """Ticked outcomes (none: all), a target and a vehicle id containing the texts, in any case."""
    live_filter = LiveFilter.parse(["PERMISSION_DENIED"], " Odometer ", "V1")
    assert live_filter.admits(decision("PERMISSION_DENIED", vehicle="fleet-v12"))
    assert not live_filter.admits(decision("ALLOWED", vehicle="fleet-v12"))
    assert not live_filter.admits(decision("PERMISSION_DENIED", target="location-preciselocation", vehicle="v1"))
    assert not live_filter.admits(decision("PERMISSION_DENIED", vehicle="v2"))
    assert LiveFilter().admits(LiveDecision(outcome="REJECTED"))  # a REJECTED one may have no target at all


def test_window_counts_per_outcome_and_lists_the_newest_first() -> None:
    """A flush counts every outcome (zero for those absent), rates over the window's seconds, the newest RECENT
    decisions newest first; then a new window starts empty."""
    window = Window(LiveFilter(), started=100.0)
    for n in range(RECENT + 5):
        window.add(decision("ALLOWED" if n % 5 else "UNAUTHORIZED", vehicle=f"v{n}"))
    sent = message(window.flush(102.0))
    assert sent["counts"] == dict.fromkeys(OUTCOMES, 0) | {"ALLOWED": 20, "UNAUTHORIZED": 5}
    assert sent["rate_per_s"]["ALLOWED"] == 10.0
    assert sent["window_s"] == 2.0
    assert [d["vehicle_id"] for d in sent["recent"]] == [f"v{n}" for n in range(RECENT + 4, 4, -1)]
    assert sent["dropped"] == 0
    assert sum(message(window.flush(103.0))["counts"].values()) == 0  # one message saying it fell to zero


def test_window_is_silent_while_nothing_happens() -> None:
    """No message for a window with nothing counted after a zero one; the next window starts at that tick."""
    window = Window(LiveFilter(), started=0.0)
    assert window.flush(1.0) is None
    window.add(decision())
    assert message(window.flush(1.5))["window_s"] == 0.5


def test_skipped_ticks_fold_into_the_next_message() -> None:
    """Ticks skipped for a slow subscriber lose no count: the next message spans them and says how many."""
    window = Window(LiveFilter(), started=0.0)
    for tick in (1.0, 2.0, 3.0):
        window.add(decision())
        window.add(decision("REJECTED"))
        if tick < 3.0:
            window.skip()
    sent = message(window.flush(3.0))
    assert sent["counts"]["ALLOWED"] == 3
    assert sent["counts"]["REJECTED"] == 3
    assert sent["window_s"] == 3.0
    assert sent["dropped"] == 2


def test_window_counts_only_what_its_filter_admits() -> None:
    """Decisions the filter refuses are neither counted nor listed."""
    window = Window(LiveFilter.parse(["ALLOWED"], "", ""), started=0.0)
    window.add(decision("ALLOWED"))
    window.add(decision("REJECTED"))
    sent = message(window.flush(1.0))
    assert sum(sent["counts"].values()) == 1
    assert [d["outcome"] for d in sent["recent"]] == ["ALLOWED"]
