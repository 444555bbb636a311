"""What every HTTP handler may use: the settings, one Redis client, the registry, the accounts Connect logs into."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from services.http.accounts import AccountDirectory
from services.http.live_hub import LiveHub
from services.http.lookups import Lookups
from services.http.pipeline import Pipeline
from services.http.ratelimit import RateLimiter
from services.redis_client import Client
from services.registry import AppStore, ConnectService, Registry, TokenStore
from services.settings import Settings


@dataclass(frozen=True, slots=True)
class HttpContext:
    """Built once by the composition root (`fleetgate serve`, the tests) and handed to `create_app`."""

    settings: Settings
    redis: Client
    registry: Registry
    accounts: AccountDirectory
    apps: AppStore = field(init=False)
    tokens: TokenStore = field(init=False)
    connect: ConnectService = field(init=False)
    login_limiter: RateLimiter = field(init=False)
    token_limiter: RateLimiter = field(init=False)
    pipeline: Pipeline = field(init=False)
    lookups: Lookups = field(init=False)
    live: LiveHub = field(init=False)

    def __post_init__(self) -> None:
        keys = self.registry.keys
        derived = {
            "apps": AppStore(self.redis, keys),
            "tokens": TokenStore(self.redis, keys, self.settings.token_lifetimes),
            "connect": ConnectService(self.registry),
            "login_limiter": RateLimiter(self.redis, keys, limit=self.settings.login_rate_limit),
            "token_limiter": RateLimiter(self.redis, keys, limit=self.settings.token_rate_limit),
            "pipeline": Pipeline(self.redis, keys, self.settings.api_timeout_s),
            "lookups": Lookups(self.settings.api_cache_ttl_s),
            "live": LiveHub(self.redis, keys),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)  # frozen: set once, here


async def get_context(request: Request) -> HttpContext:
    """The app's context, for handlers: `context: Annotated[HttpContext, Depends(get_context)]`. A coroutine on
    purpose: FastAPI runs a plain function dependency in its thread pool, a thread hand-off on every call."""
    context: HttpContext = request.app.state.context
    return context
