"""The gatekeeper's msgspec decoder agrees with the pydantic model on every input the fuzz strategies make."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from devtools.builders import request_body
from schemas import request_decoder
from schemas.catalog import get_catalog
from schemas.messages import decode_request
from schemas.request_decoder import Request, from_model, read_request
from schemas.rfc3339 import Rfc3339DateTime

T = TypeVar("T")
SIGNALS = [s.code for s in get_catalog().signals]
TIMES = [
    "2026-11-28T12:00:00Z", "2026-11-28t12:00:00z", "2026-11-28T12:00:00.123456789+01:00", "2026-12-31T23:59:60Z",
    "2026-11-28 12:00:00Z", "2026-11-28T12:00Z", "2026-11-28T12:00:00+0100", "2026-13-28T12:00:00Z",
    "2026-02-30T12:00:00Z", "2026-11-28T24:00:00Z", "2026-11-28T12:00:00+24:00", "2026-11-28T12:00:00",
    "1764331200", "",
]  # fmt: skip
IDS = ["c-1", "v.2:x_y-z", "-lead", "a" * 128, "a" * 129, "with space", "ünï", "c-1\n", ""]
TEXT = st.text(st.characters(codec="utf-8") | st.sampled_from(["\ud800", "\udc80", "\x00", "\n", '"']), max_size=140)
FLAT_VALUES = st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT
"""What a command argument can be."""
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=12,
)
FIELD_VALUES: dict[str, Any] = {
    "request_id": TEXT | st.integers() | st.sampled_from(IDS),
    "connection_id": st.sampled_from(IDS) | TEXT | st.none(),
    "vehicle_id": st.sampled_from(IDS) | TEXT,
    "kind": st.sampled_from(["signal", "command", "Signal", "", 1]),
    "target": st.sampled_from([*SIGNALS[:5], "lock", "x" * 128, "x" * 129, ""]) | TEXT,
    "issued_at": st.sampled_from(TIMES) | TEXT | st.integers(),
    "params": st.none()
    | st.dictionaries(st.text(max_size=4), FLAT_VALUES, max_size=3)
    | st.dictionaries(st.text(max_size=4), JSON_VALUES, max_size=3)
    | JSON_VALUES,
    "v": st.sampled_from([1, 1.0, True, "1", 2, None]),
    "scopes": JSON_VALUES,
}


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    """A valid request with some fields replaced, dropped or repeated, extra ones added, as compact or spaced
    JSON; lone surrogates are written as the escapes a producer's JSON library would write."""
    body: dict[str, Any] = request_body()
    for name in draw(st.lists(st.sampled_from(list(FIELD_VALUES)), max_size=3)):
        if draw(st.booleans()):
            body[name] = draw(FIELD_VALUES[name])
        else:
            body.pop(name, None)
    separators = draw(st.sampled_from([(",", ":"), (", ", ": ")]))
    text = json.dumps(body, separators=separators, ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()) and len(body) > 1:  # a duplicate key: the last one counts, for both decoders
        name = draw(st.sampled_from(sorted(body)))
        text = text[:-1] + f',"{name}":' + json.dumps(draw(FIELD_VALUES.get(name, JSON_VALUES))) + "}"
    return text.encode("utf-8", "surrogatepass")


def mangled(data: bytes, cut: int, insert: bytes) -> bytes:
    cut %= len(data) + 1
    return data[:cut] + insert + data[cut:]


VALID = json.dumps(request_body()).encode()


def decoded(decode: Callable[[bytes], T], data: bytes) -> tuple[T | None, list[Any] | None]:
    """What a decoder makes of `data`: its result, or the errors of the ValidationError it raised."""
    try:
        return decode(data), None
    except ValidationError as exc:
        return None, exc.errors()


def typed(params: dict[str, Any] | None) -> list[tuple[str, type, Any]] | None:
    return None if params is None else [(name, type(value), value) for name, value in params.items()]


def issued_at_value(text: str) -> Any:
    return TypeAdapter(Rfc3339DateTime).validate_json(json.dumps(text))


@pytest.mark.reliability  # a fuzzer: with the others, out of the fast tier
@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        payloads(),
        st.builds(mangled, st.just(VALID), st.integers(0, 300), st.binary(min_size=1, max_size=6)),
        st.binary(max_size=200),
    )
)
@example(VALID.replace(b'"v": 1', b'"x": NaN, "v": 1'))
@example(b"[" * 300 + b"]" * 300)
@example(VALID.replace(b'"v": 1', b'"x": ' + b"[" * 200 + b"]" * 200 + b', "v": 1'))  # pydantic's limit: 200 levels
@example(VALID.replace(b'"v": 1', b'"x": ' + b"[" * 199 + b"]" * 199 + b', "v": 1'))
@example(VALID.replace(b'"v": 1', b'"v": 1.0'))
@example(VALID.replace(b'"v": 1', b'"params": {"a": 1.0, "b": 1, "c": true, "d": "1", "e": -0.0, "f": 1e16}, "v": 1'))
@example(VALID.replace(b'"v": 1', b'"params": {"a": 100000000000000000000, "b": 1e400, "c": 1E-400}, "v": 1'))
@example(VALID.replace(b'"v": 1', b'"params": {"a": 1, "a": 2.5}, "v": 1'))
def test_both_decoders_accept_the_same_requests_with_the_same_values(data: bytes) -> None:
    """read_request accepts exactly what RequestMessage accepts, with the same fields (issued_at: the same
    instant), and raises pydantic's ValidationError for the rest."""
    reference, reference_errors = decoded(decode_request, data)
    request, errors = decoded(read_request, data)
    assert errors == reference_errors
    if reference is None or request is None:
        assert (reference, request) == (None, None)
        return
    assert {**msgspec.structs.asdict(request), "issued_at": None} == {
        **msgspec.structs.asdict(from_model(reference)),
        "issued_at": None,
    }
    # == takes 1 for 1.0 and for True: command arguments must have the same types too (a decision echoes them).
    assert typed(request.params) == typed(reference.params)
    assert issued_at_value(request.issued_at) == reference.issued_at


def test_the_common_request_never_reaches_pydantic(monkeypatch: pytest.MonkeyPatch) -> None:
    """A valid signal request, seen before or not, is decoded by msgspec alone (the point of the fast path)."""

    def refuse(_data: bytes) -> None:
        raise AssertionError("pydantic was called")

    monkeypatch.setattr(request_decoder, "decode_request", refuse)
    for n in range(3):
        body = request_body(request_id=f"r-{n}", connection_id=f"c-new-{n}", issued_at=f"2026-11-28T12:00:0{n}Z")
        assert isinstance(read_request(json.dumps(body).encode()), Request)


def test_what_it_remembers_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The remembered ids are forgotten all at once when full, and remembered again as they come."""
    monkeypatch.setattr(request_decoder, "REMEMBERED", 3)
    monkeypatch.setattr(request_decoder, "_valid_ids", set())
    for n in range(5):
        read_request(json.dumps(request_body(connection_id=f"c-{n}", vehicle_id="v-1")).encode())
    assert len(request_decoder._valid_ids) <= 3
