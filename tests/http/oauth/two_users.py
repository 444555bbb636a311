"""Two users on two apps, each with their own vehicles, for the authorization fuzzers: the caller is user 1 on the
world's app; every other connection (user 2's, a connection without a user, user 1's own on the other app) is a
vehicle that caller must never reach. And what the fuzzers share: the served document as schemathesis loads it,
and an answer's kind."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.core.transport import Response
from schemathesis.schemas import BaseSchema

from devtools.builders import make_vehicle
from schemas.connection import Connection, ConnectionStatus
from schemas.powertrain import Powertrain
from tests.http.oauth.conftest import CONTROLS, READS, REDIRECT_URI, OAuthWorld
from tests.http.test_openapi_links import DOCUMENTED_LINKS_ONLY

CALLER = "user-1"
OWN = {"u1-bev": Powertrain.BEV, "u1-ice": Powertrain.ICE}
"""The caller's vehicles on the world's app."""
FOREIGN = {
    "no-user-bev": (None, "app"),  # connected without a user (the command line's way)
    "u2-bev": ("user-2", "app"),  # the newest: the first of the management listing
    "u1-elsewhere": (CALLER, "other_app"),  # the caller's vehicle, but connected to another app
    "u2-elsewhere": ("user-2", "other_app"),
}
"""Vehicle id -> (user, which app of the world): what the caller's token must not reach."""
UNKNOWN = "no-such-vehicle"
SCOPE = f"{READS} {CONTROLS}"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass
class TwoUsers:
    """The seeded connections, and the caller's current credentials (`refresh` renews them)."""

    world: OAuthWorld
    connections: list[tuple[str | None, str, str, Connection]] = field(default_factory=list)
    access_token: str = ""
    code: str = ""

    async def seed(self) -> TwoUsers:
        """The caller's vehicles first, then the others (the management listing shows the newest first)."""
        for vehicle_id, powertrain in OWN.items():
            await self._connect(CALLER, vehicle_id, self.world.client_id, powertrain)
        for vehicle_id, (user_id, app) in FOREIGN.items():
            app_id = self.world.app.app.id if app == "app" else self.world.other_app.app.id
            await self._connect(user_id, vehicle_id, app_id, Powertrain.BEV)
        return await self.refresh()

    async def _connect(self, user_id: str | None, vehicle_id: str, app_id: str, powertrain: Powertrain) -> None:
        await self.world.registry.add_vehicle(make_vehicle(powertrain, vehicle_id=vehicle_id))
        connection = await self.world.connect_vehicle(user_id, vehicle_id, app_id=app_id, scope=SCOPE)
        self.connections.append((user_id, vehicle_id, app_id, connection))

    async def refresh(self) -> TwoUsers:
        """Reconnect what a scenario revoked (a disconnect, the management API's delete), and a new token pair
        and code for the caller (revoking a user's last connection revokes their tokens)."""
        for index, (user_id, vehicle_id, app_id, connection) in enumerate(self.connections):
            if (await self.world.registry.connection(connection.id)).status is not ConnectionStatus.ACTIVE:
                again = await self.world.connect_vehicle(user_id, vehicle_id, app_id=app_id, scope=SCOPE)
                self.connections[index] = (user_id, vehicle_id, app_id, again)
        pair = await self.world.tokens.issue_pair(self.world.client_id, CALLER)
        self.access_token = pair.access_token
        self.code = await self.world.code(CALLER)
        return self

    def authorization(self, path: str) -> str:
        """The caller's credentials for an operation: the app's client Basic for the token endpoint, its
        management token for the management API, the user's access token for everything else."""
        if path.startswith("/oauth/"):
            return basic(self.world.client_id, self.world.secret)
        if path.startswith("/v2.0/management/"):
            return basic("default", self.world.amt)
        return f"Bearer {self.access_token}"

    def token_exchange(self) -> dict[str, Any]:
        """The form of the authorization code grant for the current code."""
        return {"grant_type": "authorization_code", "code": self.code, "redirect_uri": REDIRECT_URI}


def served_schema(base_url: str) -> BaseSchema:
    """The server's OpenAPI document, with its documented links only."""
    config = SchemathesisConfig.from_dict(DOCUMENTED_LINKS_ONLY)
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=config)


def answer_kind(response: Response) -> tuple[int, Any, Any]:
    """Status, error type and code of an answer (a v2 error, or the first of a v3 error document's)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
        body = body["errors"][0]
    if not isinstance(body, dict):
        return response.status_code, None, None
    return response.status_code, body.get("type"), body.get("code")
