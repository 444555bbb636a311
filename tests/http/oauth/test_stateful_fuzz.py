"""Stateful schemathesis over the OpenAPI document's links, with object-level authorization: user 1's access token
never reaches a vehicle it was not granted (user 2's, one connected without a user, user 1's own on another app;
tests/http/oauth/two_users.py).

The state machine walks the documented links (services/http/links.py): the user's vehicle list and the
management listing to each operation on the listed vehicle, the listing to its next page and to a revocation, a
token answer to its refresh. Every answer: no 500, a documented status code and schema. Every answer on a vehicle:
a 2xx only for the caller's vehicles still connected; on any other vehicle the seeded world knows, exactly the
answer for a vehicle that does not exist (so nothing tells it exists). test_foreign_vehicle_fuzz.py sends every
operation to every foreign vehicle.

The honest option: the whole pipeline (the test's uvicorn server in a thread, a gatekeeper and a vehicles service
on the session's redis-server), as in test_vehicle_v2_fuzz.py, so 200s really come back and are checked for whose
vehicle they are. In-process on fakeredis (schemathesis' ASGI transport runs each call on a new event loop,
where the API's pipeline cannot read its answers) every vehicle call would only time out with a 502.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, ClassVar, cast

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import Bundle, initialize
from schemathesis.checks import (
    CheckFunction,
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.transport import Response
from schemathesis.generation.stateful.state_machine import StepInput, StepOutput
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.stateful import OpenAPIStateMachine

from tests.http.oauth.conftest import OAuthWorld
from tests.http.oauth.test_vehicle_v2_fuzz import no_internal_error
from tests.http.oauth.two_users import CALLER, FOREIGN, OWN, UNKNOWN, TwoUsers, answer_kind, served_schema

pytestmark = [pytest.mark.reliability, pytest.mark.usefixtures("running")]
SEED_TIMEOUT_S = 10.0
WALK = settings(
    max_examples=30,
    stateful_step_count=8,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)


CHECKS: list[CheckFunction] = [
    no_internal_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class _Walk(OpenAPIStateMachine):
    """What the test adds to schemathesis' state machine of the document (`_walk` puts it first in the MRO)."""

    users: ClassVar[TwoUsers]
    loop: ClassVar[asyncio.AbstractEventLoop]
    seen: ClassVar[Counter[str]]
    revoked: set[str]

    def setup(self) -> None:
        """Each scenario starts from the seeded world: what the previous one revoked is connected again."""
        super().setup()
        asyncio.run_coroutine_threadsafe(self.users.refresh(), self.loop).result(SEED_TIMEOUT_S)
        self.revoked = set()

    @initialize(target=Bundle("catch_all"))
    def exchange_code(self) -> StepOutput:
        """A code from Connect (not an API operation) exchanged for a pair: the refresh link's source."""
        case = self.schema["/oauth/token"]["POST"].Case(
            body=self.users.token_exchange(), media_type="application/x-www-form-urlencoded"
        )
        step = StepInput.initial(case)
        self.recorder.record_case(case=case)
        self.control.record_step(step, self.recorder)  # bounds the refreshes that follow, as for any source
        output = self.step(step)
        self.seen[f"code exchange {output.response.status_code}"] += 1
        return output

    def get_call_kwargs(self, case: schemathesis.Case[Any]) -> dict[str, Any]:
        return {"headers": {"Authorization": self.users.authorization(case.path)}}

    def validate_response(
        self,
        response: Response,
        case: schemathesis.Case[Any],
        additional_checks: list[CheckFunction] | None = None,
        **kwargs: Any,
    ) -> None:
        del additional_checks
        case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs or None, recorder=self.recorder)
        self.check_reach(response, case, kwargs)
        self.note_revocations(response, case)

    def note_revocations(self, response: Response, case: schemathesis.Case[Any]) -> None:
        """The caller's vehicles a disconnect or the management API's delete revoked: out of reach from now."""
        if response.status_code != 200 or case.method != "DELETE":
            return
        if case.path.startswith("/v2.0/management/"):  # the world's app: its revoked connections are listed
            self.revoked |= {c["vehicleId"] for c in response.json()["connections"] if c["userId"] == CALLER}
        else:
            self.revoked.add(case.path_parameters["vehicle_id"])

    def check_reach(self, response: Response, case: schemathesis.Case[Any], kwargs: dict[str, Any]) -> None:
        """A 2xx on a vehicle only for the caller's connected ones; any other known vehicle is answered as one
        that does not exist (an unknown id generated here is never 2xx either). Each call on the caller's own
        vehicle is sent again for every foreign vehicle: the links seldom lead to one operation on another's."""
        vehicle_id = (case.path_parameters or {}).get("vehicle_id")
        if vehicle_id is None:
            return
        if vehicle_id in set(OWN) - self.revoked:
            self.seen[f"own {response.status_code}"] += 1
            others = [(other, self.call(other, **kwargs), "mirrored") for other in (_on(case, v) for v in FOREIGN)]
        else:
            assert not 200 <= response.status_code < 300, f"reached a vehicle it does not: {_call(case, response)}"
            others = [(case, response, "foreign")] if vehicle_id in FOREIGN or vehicle_id in OWN else []
        if others:
            expected = answer_kind(self.call(_on(case, UNKNOWN), **kwargs))
            for other, answer, how in others:
                assert answer_kind(answer) == expected, f"unlike no vehicle: {_call(other, answer)}"
                self.seen[f"{how} {answer.status_code}"] += 1


def _on(case: schemathesis.Case[Any], vehicle_id: str) -> schemathesis.Case[Any]:
    """The same request for another vehicle."""
    other = case.derive()
    other.path_parameters["vehicle_id"] = vehicle_id
    return other


def _call(case: schemathesis.Case[Any], response: Response) -> str:
    return f"{case.method} {case.formatted_path} -> {response.status_code} {response.text[:300]}"


def _walk(schema: BaseSchema, users: TwoUsers, loop: asyncio.AbstractEventLoop) -> Counter[str]:
    """Run the document's state machine with the test's additions; what it saw, by kind of answer."""
    seen: Counter[str] = Counter()
    walked = schema.exclude(path="/v2.0/management/connections/")  # the same listing as without the slash
    bases = (_Walk, walked.as_state_machine())
    machine = cast("type[_Walk]", type("Walk", bases, {"users": users, "loop": loop, "seen": seen}))
    machine.run(settings=WALK)
    return seen


async def test_walking_the_links_answers_as_documented_and_only_for_the_callers_vehicles(world: OAuthWorld) -> None:
    """Scenarios along the document's links, with user 1's credentials: documented answers, and no vehicle of
    anyone else reached."""
    users = await TwoUsers(world).seed()
    seen = await asyncio.to_thread(_walk, served_schema(world.base_url), users, asyncio.get_running_loop())
    exchanges = {kind for kind in seen if kind.startswith("code exchange")}
    assert exchanges == {"code exchange 200"}, seen  # each scenario has a pair to refresh
    assert seen["own 200"] > 0, seen  # the links led to the caller's vehicles, which answered
    assert sum(n for kind, n in seen.items() if kind.startswith("foreign")) > 0, seen  # and to others' vehicles
