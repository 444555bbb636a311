"""The brands Connect's brand-select screen offers (data: brands.toml beside this module)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True, slots=True)
class Brand:
    make: str
    """Smartcar's upper-case make: the `make=` parameter and the brand button's id and value."""
    name: str
    """How the owner reads it."""


@cache
def brands() -> tuple[Brand, ...]:
    data = tomllib.loads(resources.files("services.http").joinpath("brands.toml").read_text())
    return tuple(Brand(make=entry["make"], name=entry["name"]) for entry in data["brands"])


def brand(make: str) -> Brand | None:
    """The brand of an upper-case make, or None when Connect does not offer it."""
    return next((b for b in brands() if b.make == make.upper()), None)
