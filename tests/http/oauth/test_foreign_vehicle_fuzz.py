"""Object-level authorization, stateless: every operation on a vehicle (v2, batch, permissions, disconnect, v3),
with generated parameters, bodies and headers, sent with user 1's access token for each vehicle user 1 was not
granted (user 2's, one connected without a user, user 1's own on another app; tests/http/oauth/two_users.py) or
an unknown one: AUTHENTICATION 401 every time, nothing sent to the vehicles, no connection revoked. Through the
whole pipeline, as test_stateful_fuzz.py (which says why)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core.result import Ok

from schemas.catalog import get_catalog
from schemas.connection import ConnectionStatus
from services.http.api_v3.routes import COMMANDS
from tests.http.oauth.conftest import OAuthWorld
from tests.http.oauth.two_users import FOREIGN, UNKNOWN, TwoUsers, answer_kind, served_schema

pytestmark = [pytest.mark.reliability, pytest.mark.usefixtures("running")]
ON_A_VEHICLE = r"^/v(2\.0|3)/vehicles/\{vehicle_id\}"


def _known_path(operation_path: str) -> dict[str, str]:
    """Valid values of an operation's other path parameters (a signal code, a command): an unknown one is a 404
    whatever the vehicle, and only the vehicle is to decide the answer here."""
    group, name = next(iter(COMMANDS)).split("/")
    known = {"code": get_catalog().signals[0].code, "group": group, "name": name}
    return {key: value for key, value in known.items() if f"{{{key}}}" in operation_path}


def _fuzz(base_url: str, users: TwoUsers) -> Counter[str]:
    """A few generated requests per operation on a vehicle, each for a foreign or unknown vehicle: how many."""
    answers: Counter[str] = Counter()
    for result in served_schema(base_url).include(path_regex=ON_A_VEHICLE).get_all_operations():
        assert isinstance(result, Ok), result  # the document must load
        operation = result.ok()

        @given(case=operation.as_strategy(), vehicle_id=st.sampled_from([*sorted(FOREIGN), UNKNOWN]))
        @settings(max_examples=6, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case[Any], vehicle_id: str) -> None:
            case.path_parameters = {**case.path_parameters, **_known_path(case.path), "vehicle_id": vehicle_id}
            response = case.call(headers={"Authorization": users.authorization(case.path)})
            kind = answer_kind(response)
            assert kind[:2] == (401, "AUTHENTICATION"), f"{case.method} {case.formatted_path}: {response.text}"
            answers[case.operation.label] += 1

        check()
    return answers


async def test_a_users_token_never_reaches_a_foreign_vehicle(world: OAuthWorld) -> None:
    """AUTHENTICATION 401 on every foreign vehicle, no request reaches the stream, and every foreign connection is
    still active (no disconnect went through)."""
    users = await TwoUsers(world).seed()
    sent_before = await world.redis.xlen(world.keys.requests)
    answers = await asyncio.to_thread(_fuzz, world.base_url, users)
    assert len(answers) == 29, (
        answers
    )  # the 21 v2 vehicle operations, permissions, disconnect, webhook (un)subscribe, v3 4
    assert await world.redis.xlen(world.keys.requests) == sent_before
    for user_id, vehicle_id, _, connection in users.connections:
        if vehicle_id in FOREIGN:
            record = await world.registry.connection(connection.id)
            assert record.status is ConnectionStatus.ACTIVE, (user_id, vehicle_id)
