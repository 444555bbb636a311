"""schemathesis against the v2 vehicle endpoints of the served OpenAPI document, through the whole pipeline (the
test's server, a gatekeeper and a vehicles service): whatever the bodies, queries and headers, no 500, every
answer in its documented status codes and schema. That no token reaches another user's vehicle is
test_foreign_vehicle_fuzz.py's (every operation on a vehicle, v2 included)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import response_schema_conformance, status_code_conformance

from schemas.powertrain import Powertrain
from tests.http.oauth.conftest import CONTROLS, READS, OAuthWorld, connected

pytestmark = [pytest.mark.reliability, pytest.mark.usefixtures("running")]
VEHICLE_API = r"^/v2\.0/vehicles/\{vehicle_id\}/(?!permissions|application|webhooks)"


def no_internal_error(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> None:
    """No SERVER 500 (a 501 VEHICLE_NOT_CAPABLE or a 502 from the vehicle is Smartcar's documented answer)."""
    del ctx, case
    assert response.status_code != 500, response.text


def _fuzz(base_url: str, token: str, vehicle_id: str) -> int:
    """Every vehicle operation, a few derandomized examples each, for the connected vehicle: the count run."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json").include(path_regex=VEHICLE_API)
    runs = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an Err raises here: the document must load

        @given(case=operation.as_strategy())
        @settings(max_examples=12, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case[Any]) -> None:
            case.path_parameters = {**(case.path_parameters or {}), "vehicle_id": vehicle_id}
            case.call_and_validate(
                headers={"Authorization": f"Bearer {token}"},
                checks=[no_internal_error, status_code_conformance, response_schema_conformance],
            )

        check()
        runs += 1
    return runs


async def test_no_server_errors_and_documented_answers(world: OAuthWorld) -> None:
    """Each documented v2 vehicle operation answers generated requests without a 500, in its documented status
    codes and schemas."""
    bev = await connected(world, Powertrain.BEV, "bev-1", f"{READS} {CONTROLS}")
    runs = await asyncio.to_thread(_fuzz, world.base_url, bev.access_token, "bev-1")
    assert runs == 21  # 20 endpoints of schemas/api_v2.toml and batch
