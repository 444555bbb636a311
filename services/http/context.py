"""What every HTTP handler may use: the settings, one Redis client, the registry, the accounts Connect logs into."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from services.http.accounts import AccountDirectory
from services.redis_client import Client
from services.registry import Registry
from services.settings import Settings


@dataclass(frozen=True, slots=True)
class HttpContext:
    """Built once by the composition root (`fleetgate serve`, the tests) and handed to `create_app`."""

    settings: Settings
    redis: Client
    registry: Registry
    accounts: AccountDirectory


def get_context(request: Request) -> HttpContext:
    """The app's context, for handlers: `context: Annotated[HttpContext, Depends(get_context)]`."""
    context: HttpContext = request.app.state.context
    return context
