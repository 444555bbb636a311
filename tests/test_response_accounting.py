"""The load test's response accounting on fabricated decisions and responses streams: one response per ALLOWED
decision, and each way of failing that (lost, duplicated, mismatched, a read contradicting a lock) is caught."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas import problems
from schemas.catalog import Kind, get_catalog
from schemas.messages import ResponseMessage, ResponseStatus
from schemas.powertrain import Powertrain
from simulator.accounting import Accountant, Sent
from simulator.effects import Effect, EffectRules, default_rules
from simulator.errors import SimulatorError
from simulator.owners import default_app_config
from simulator.readers import Entries, account_decisions, account_responses
from simulator.report import ResponseAccounting
from simulator.response_accounting import ResponseAccountant
from simulator.world import Grant, SimVehicle, World

T0 = 1_800_000_000.0
"""When the load started (wall clock, epoch seconds)."""
SIM = 1_700_000_000.0
"""The vehicles' simulated clock at the start."""
READ, LOCK, UNLOCK = "closure-islocked", "lock", "unlock"
TARGETS = frozenset({READ, LOCK, UNLOCK})
GRANT = Grant(frozenset(get_catalog().signal_or_command(t).permission for t in TARGETS))
VEHICLES = (
    SimVehicle("v1", "Tesla", Powertrain.BEV, 0, "c1", GRANT),
    SimVehicle("v2", "Ford", Powertrain.ICE, 0, "c2", GRANT),
)
WORLD = World(vehicles=VEHICLES, profiles=(TARGETS,), selected_signals=(READ,), selected_commands=(LOCK, UNLOCK))


class Streams:
    """Requests as the producers report them, decisions and responses as the readers read them."""

    def __init__(self) -> None:
        self.accountant = Accountant(WORLD, T0)
        self.responses = ResponseAccountant(self.accountant, default_rules())
        self._entry = 0

    def sent(self, request_id: str, target: str, *, at: float = 0.0, vehicle: int = 0) -> None:
        self.accountant.on_sent([(request_id, T0 + at, vehicle, target, 0)])

    def decided(self, request_id: str, outcome: str = "ALLOWED") -> None:
        decision = {"request_id": request_id, "outcome": outcome}
        account_decisions(self._entries(json.dumps(decision).encode()), self.accountant, T0 + 5, {}, self.responses)

    def answered(self, request_id: str, target: str, *, read_at: float = 0.1, **fields: Any) -> None:
        account_responses(self._entries(response(request_id, target, **fields)), self.responses, T0 + read_at)

    def _entries(self, data: bytes) -> Entries:
        self._entry += 1
        return [(f"{self._entry}-0".encode(), {b"data": data})]

    def accounting(self) -> ResponseAccounting:
        return self.responses.accounting()


def response(
    request_id: str,
    target: str,
    *,
    vehicle: str = "v1",
    code: str | None = None,
    value: bool | None = None,
    retrieved_s: float = 0.0,
    reported_s: float | None = None,
    written_s: float = 0.0,
) -> bytes:
    """A response as the vehicles service writes it: simulated times in seconds after SIM, written at T0 + s."""
    kind: Kind = "command" if target in (LOCK, UNLOCK) else "signal"
    return ResponseMessage(
        response_id=f"resp-{request_id}",
        request_id=request_id,
        decision_id=f"d-{request_id}",
        connection_id="c1",
        vehicle_id=vehicle,
        kind=kind,
        target=target,
        status=ResponseStatus.SUCCESS if code is None else ResponseStatus.ERROR,
        body=None if value is None else {"value": value},
        oem_updated_at=None if reported_s is None else _at(SIM + reported_s),
        retrieved_at=_at(SIM + retrieved_s),
        error=None if code is None else problems.VEHICLE_STATE_PROBLEMS[code].for_request(request_id),
        responded_at=_at(T0 + written_s),
    ).encode()


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def test_each_allowed_request_answered_once_is_clean() -> None:
    """Two ALLOWED requests answered once each, a denied one unanswered: clean, counted by code and powertrain."""
    streams = Streams()
    for request_id, target, vehicle in (("r1", READ, 0), ("r2", LOCK, 1), ("r3", READ, 0)):
        streams.sent(request_id, target, vehicle=vehicle)
    streams.decided("r1")
    streams.decided("r2")
    streams.decided("r3", "PERMISSION_DENIED")
    streams.answered("r1", READ, value=True, reported_s=0)
    streams.answered("r2", LOCK, vehicle="v2", code="DOOR_OPEN")
    report = streams.responses.report()
    assert report.accounting.clean
    assert (report.accounting.allowed, report.accounting.answered) == (2, 2)
    assert report.outcomes == {"SUCCESS": 1, "DOOR_OPEN": 1}
    assert report.by_powertrain == {"BEV": {"SUCCESS": 1}, "ICE": {"DOOR_OPEN": 1}}
    assert report.latency_ms.count == 2
    assert 99 <= report.latency_ms.p50 <= 101  # issued at T0, read at T0 + 0.1 s


def test_an_allowed_request_without_a_response_is_lost() -> None:
    """An ALLOWED decision that no response follows is lost, with its target and vehicle as the example."""
    streams = Streams()
    streams.sent("r1", READ)
    streams.sent("r2", READ, vehicle=1)
    streams.decided("r1")
    streams.decided("r2")
    streams.decided("r2")  # the gatekeeper's double (its own accounting counts it): one response still expected
    streams.answered("r1", READ, value=True)
    accounting = streams.accounting()
    assert (accounting.allowed, accounting.answered, accounting.lost) == (2, 1, 1)
    assert [(p.problem, p.request_id, p.target, p.vehicle_id) for p in accounting.examples] == [
        ("lost", "r2", READ, "v2")
    ]
    assert not accounting.clean
    assert streams.responses.pending == 1


def test_a_second_response_to_one_request_is_duplicated() -> None:
    """Two responses to one request: duplicated once, counted once in the outcomes and the latency."""
    streams = Streams()
    streams.sent("r1", READ)
    streams.decided("r1")
    streams.answered("r1", READ, value=True)
    streams.answered("r1", READ, value=True)
    report = streams.responses.report()
    assert (report.accounting.duplicated, report.accounting.lost) == (1, 0)
    assert report.outcomes == {"SUCCESS": 1}
    assert report.latency_ms.count == 1
    assert [p.problem for p in report.accounting.examples] == ["duplicated"]
    assert not report.accounting.clean


def test_a_response_without_an_allowed_decision_is_mismatched() -> None:
    """Responses to a denied request, to one never sent and an unreadable entry are all mismatched."""
    streams = Streams()
    streams.sent("r1", READ)
    streams.decided("r1", "UNAUTHORIZED")
    streams.answered("r1", READ, value=True)
    streams.answered("ghost", READ, value=True)
    account_responses([(b"9-0", {b"data": b"{not json"})], streams.responses, T0)
    accounting = streams.accounting()
    assert (accounting.mismatched, accounting.allowed, accounting.lost) == (3, 0, 0)
    assert {p.request_id for p in accounting.examples if p.problem == "mismatched"} == {
        "r1",
        "ghost",
        "(no request id)",
    }
    assert not accounting.clean


def test_a_read_contradicting_the_unlock_before_it_violates_its_effect() -> None:
    """After a SUCCESSful unlock, a read the vehicle reported at that moment must say unlocked; after a lock,
    locked. One of each way, on two vehicles: two checked, one violated, named with the command."""
    streams = Streams()
    streams.sent("u1", UNLOCK)
    streams.sent("read1", READ, at=2.0)  # issued after the unlock's response was written (T0 + 1)
    streams.sent("k2", LOCK, vehicle=1)
    streams.sent("read2", READ, at=2.0, vehicle=1)
    for request_id in ("u1", "read1", "k2", "read2"):
        streams.decided(request_id)
    streams.answered("u1", UNLOCK, retrieved_s=10, written_s=1)
    streams.answered("read1", READ, value=True, retrieved_s=12, reported_s=10)  # still locked: wrong
    streams.answered("k2", LOCK, vehicle="v2", retrieved_s=20, written_s=1)
    streams.answered("read2", READ, vehicle="v2", value=True, retrieved_s=21, reported_s=20)
    accounting = streams.accounting()
    assert (accounting.effects_checked, accounting.effects_violated) == (2, 1)
    (violation,) = accounting.examples
    assert (violation.problem, violation.request_id, violation.vehicle_id) == ("effect", "read1", "v1")
    assert violation.detail == "read true after unlock u1 set false"
    assert (accounting.lost, accounting.duplicated, accounting.mismatched) == (0, 0, 0)
    assert not accounting.clean


def test_reads_the_command_cannot_be_held_to_are_not_judged() -> None:
    """Not judged: a read issued before the command's response was written, one the vehicle reported later (its
    own life may have locked it since), and a read after a refused lock (it set nothing: the unlock still holds)."""
    streams = Streams()
    streams.sent("u1", UNLOCK)
    streams.sent("early", READ, at=0.5)
    streams.sent("later", READ, at=2.0)
    streams.sent("k1", LOCK, at=3.0)
    streams.sent("after-refusal", READ, at=4.0)
    for request_id in ("u1", "early", "later", "k1", "after-refusal"):
        streams.decided(request_id)
    streams.answered("u1", UNLOCK, retrieved_s=10, written_s=1)
    streams.answered("early", READ, value=True, retrieved_s=10, reported_s=10)
    streams.answered("later", READ, value=True, retrieved_s=40, reported_s=30)
    streams.answered("k1", LOCK, code="DOOR_OPEN", retrieved_s=41, written_s=3.5)
    streams.answered("after-refusal", READ, value=False, retrieved_s=42, reported_s=10)
    accounting = streams.accounting()
    assert (accounting.effects_checked, accounting.effects_violated) == (1, 0)
    assert accounting.clean


def test_a_response_read_before_its_request_was_reported_is_still_measured() -> None:
    """The response reader can be ahead of the producer's report: its latency counts once the report is in."""
    streams = Streams()
    streams.decided("r1")
    streams.answered("r1", READ, value=True, read_at=0.25)
    streams.sent("r1", READ, at=0.05)
    report = streams.responses.report()
    assert report.accounting.clean
    assert report.latency_ms.count == 1
    assert 198 <= report.latency_ms.p50 <= 202
    first, *later = streams.responses.timeline(streams.accountant.timeline())
    assert (first.answered, first.e2e_p50_ms is not None) == (1, True)
    assert [s.answered for s in later] == [0] * len(later)


def test_sent_records_are_the_producers() -> None:
    """The accountant gives back what a producer reported for a request id, and nothing for an unknown one."""
    streams = Streams()
    record: Sent = ("r1", T0 + 1, 1, READ, 0)
    streams.accountant.on_sent([record])
    assert streams.accountant.sent_record("r1") == record
    assert streams.accountant.issued_at("r1") == T0 + 1
    assert streams.accountant.sent_record("r2") is None


def test_the_effect_rules_name_what_the_app_selects() -> None:
    """Every rule's command and signal is in the simulated app's selection, so a load can exercise each one."""
    config = default_app_config()
    rules = default_rules()
    assert set(rules.by_command) == {LOCK, UNLOCK}
    assert set(rules.by_command) <= {c.name for c in config.commands}
    assert rules.signals <= {s.code for s in config.signals}


def test_a_rule_naming_an_unknown_signal_is_refused() -> None:
    """A typo in effects.toml stops the load test before it starts, naming the signal."""
    with pytest.raises(SimulatorError, match="closure-islockd"):
        EffectRules.of((Effect(command=LOCK, signal="closure-islockd", value=True),))
