"""The Smartcar API v2 vehicle endpoints as data (`api_v2.toml`): which catalog signals a GET reads, which command
a POST sends, and so which permission each endpoint needs (the catalog's, never its own).

Validated once at load time against the catalog: every name exists, a GET reads signals and a POST sends commands,
and all the targets of one endpoint need one permission.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.catalog import Catalog, Command, Signal, get_catalog
from schemas.errors import CatalogError

PACKAGED_ENDPOINTS = Path(__file__).with_name("api_v2.toml")


class Endpoint(BaseModel):
    """One v2 endpoint: a GET of signals, or a POST of a command (by action, or with arguments)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    method: Literal["GET", "POST"]
    summary: str
    signals: dict[str, str] = Field(default_factory=dict)
    """Role (the name the body builder knows it by) -> signal code."""
    optional: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    commands: dict[str, str] | None = None
    command: str | None = None
    params: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Endpoint:
        if self.method == "GET":
            if not (self.signals or self.optional) or self.body is None:
                raise ValueError(f"GET {self.path!r}: needs signals and a body builder")
            if self.commands or self.command or self.params:
                raise ValueError(f"GET {self.path!r}: reads signals, sends no command")
        else:
            if (self.commands is None) == (self.command is None):
                raise ValueError(f"POST {self.path!r}: needs either `commands` (by action) or one `command`")
            if (self.command is None) != (self.params is None):
                raise ValueError(f"POST {self.path!r}: a `command` needs its `params` builder, and only it")
            if self.signals or self.optional or self.body:
                raise ValueError(f"POST {self.path!r}: sends a command, reads no signals")
        return self

    @property
    def roles(self) -> tuple[str, ...]:
        """The role of each of `targets` (a GET's), in the same order."""
        return (*self.signals, *self.optional)

    @property
    def targets(self) -> tuple[str, ...]:
        """Every signal code or command name the endpoint may send a request for."""
        if self.method == "GET":
            return (*self.signals.values(), *self.optional.values())
        return tuple(self.commands.values()) if self.commands else (self.command or "",)

    def permission(self, catalog: Catalog) -> str:
        return catalog.signal_or_command(self.targets[0]).permission


class Endpoints(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoints: tuple[Endpoint, ...]

    def find(self, method: str, path: str) -> Endpoint | None:
        """The endpoint of this method and path (without leading or trailing slashes), if any."""
        for endpoint in self.endpoints:
            if endpoint.method == method and endpoint.path == path:
                return endpoint
        return None

    def paths(self) -> frozenset[str]:
        return frozenset(e.path for e in self.endpoints)


def check(endpoints: Endpoints, catalog: Catalog) -> None:
    """Raise CatalogError unless every endpoint names known targets of the right kind, all of one permission."""
    seen: set[tuple[str, str]] = set()
    for endpoint in endpoints.endpoints:
        where = f"{endpoint.method} /{endpoint.path}"
        if (endpoint.method, endpoint.path) in seen:
            raise CatalogError(f"api_v2.toml: {where} is listed twice")
        seen.add((endpoint.method, endpoint.path))
        try:
            targets: list[Signal | Command] = [
                catalog.signal(name) if endpoint.method == "GET" else catalog.command(name) for name in endpoint.targets
            ]
        except ValueError as exc:
            raise CatalogError(f"api_v2.toml: {where}: {exc}") from exc
        permissions = {t.permission for t in targets}
        if len(permissions) != 1:
            raise CatalogError(f"api_v2.toml: {where} mixes permissions {sorted(permissions)}")


def load_endpoints(path: Path | None = None, catalog: Catalog | None = None) -> Endpoints:
    path = path or PACKAGED_ENDPOINTS
    try:
        endpoints = Endpoints.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as exc:
        raise CatalogError(f"invalid v2 endpoint map {path}: {exc}") from exc
    check(endpoints, catalog or get_catalog())
    return endpoints


@cache
def get_endpoints() -> Endpoints:
    """The packaged v2 endpoint map, loaded and checked once per process."""
    return load_endpoints()
