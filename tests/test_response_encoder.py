"""The vehicles service's response encoder against the reference (the pydantic model): the same bytes, for any
ids, bodies, times and problems."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from schemas.catalog import Kind
from schemas.messages import ResponseMessage
from schemas.outbound import encode_response, response_message
from schemas.problems import UPSTREAM_PROBLEMS, VEHICLE_STATE_PROBLEMS, Problem

ids = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40)
resource_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,30}", fullmatch=True)
times = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC))
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
bodies = st.none() | st.dictionaries(
    st.text(), st.recursive(scalars, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=8)
)
problem_list = [*VEHICLE_STATE_PROBLEMS.values(), *UPSTREAM_PROBLEMS.values()]


@given(
    ids,
    ids,
    ids,
    ids,
    resource_ids,
    st.sampled_from(["signal", "command"]),
    ids,
    bodies,
    st.none() | times,
    times,
    st.none() | st.sampled_from(problem_list),
    times,
    st.none() | st.integers(0, 86_400),
)
def test_fast_response_encoder_matches_the_model(
    response_id: str,
    request_id: str,
    decision_id: str,
    connection_id: str,
    vehicle_id: str,
    kind: Kind,
    target: str,
    body: dict[str, Any] | None,
    oem_updated_at: datetime | None,
    retrieved_at: datetime,
    problem: Problem | None,
    responded_at: datetime,
    retry_after_s: int | None,
) -> None:
    fields: dict[str, Any] = {
        "response_id": response_id,
        "request_id": request_id,
        "decision_id": decision_id,
        "connection_id": connection_id,
        "vehicle_id": vehicle_id,
        "kind": kind,
        "target": target,
        "body": body,
        "oem_updated_at": oem_updated_at,
        "retrieved_at": retrieved_at,
        "problem": problem,
        "responded_at": responded_at,
        "retry_after_s": retry_after_s,
    }
    fast = encode_response(**fields)
    model = response_message(**fields)
    assert fast == model.encode()  # byte for byte: infinities as null, non-ASCII as UTF-8, as pydantic writes them
    ResponseMessage.model_validate_json(fast)


def test_an_error_response_names_its_own_request() -> None:
    """The cached error fields are filled per request, never shared between them."""
    problem = VEHICLE_STATE_PROBLEMS["ASLEEP"]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    common: dict[str, Any] = {"response_id": "r", "decision_id": "d", "connection_id": "c", "vehicle_id": "v"}
    common |= {"kind": "signal", "target": "t", "body": None, "oem_updated_at": None, "retrieved_at": now}
    first = encode_response(request_id="q-1", problem=problem, responded_at=now, **common)
    second = encode_response(request_id="q-2", problem=problem, responded_at=now, **common)
    error = ResponseMessage.model_validate_json(first).error
    assert error is not None
    assert error.request_id == "q-1"
    assert b'"requestId":"q-2"' in second
