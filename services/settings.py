"""All of fleetgate's settings in one typed object, read from `FLEETGATE_*` environment variables."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLEETGATE_", extra="ignore", frozen=True)

    redis_url: str = "redis://127.0.0.1:6379/0"
    """Redis to use; may carry a user and password (`redis://user:pass@host:port/db`) or TLS (`rediss://`)."""
    key_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")] = "fleetgate"
    """Every key and stream fleetgate uses starts with this and a colon."""
