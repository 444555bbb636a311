"""How the simulated vehicle reports each catalog signal: signals.toml, loaded and checked against the catalog once.

The file maps each signal code to the builder of its body, where its value comes from (the vehicle, the OEM's
cloud, the charger), the setter that sets it by hand, and a status diagnostic's trouble code. Python code looks
signals up here and in the catalog, never by name.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from schemas.catalog import get_catalog
from schemas.errors import describe_validation_error
from simulator.errors import SimulatorError

Source = Literal["vehicle", "cloud", "charger"]


class SignalSim(BaseModel):
    """One signal's entry of signals.toml (see the file's header)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    value: str | None = None
    body: str | None = None
    source: Source = "vehicle"
    set: str | None = None
    closure: str | None = None
    lockable: bool = False
    dtc: str | None = None
    fault: str | None = None
    alert_when: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SignalSim:
        if (self.value is None) == (self.body is None):
            raise ValueError("exactly one of `value` and `body` is needed")
        if (self.body == "closure") != (self.closure is not None):
            raise ValueError("`closure` goes with body = 'closure', and only with it")
        if (self.body == "diagnostic") != (self.dtc is not None and self.fault is not None):
            raise ValueError("`dtc` and `fault` go with body = 'diagnostic', and only with it")
        return self

    @property
    def builder(self) -> str:
        return self.value or self.body or ""


class SignalMapError(SimulatorError):
    """signals.toml does not fit the catalog or the simulator's builders; the message says where."""


@cache
def signal_map() -> dict[str, SignalSim]:
    """Every catalog signal's entry, by code."""
    text = resources.files("simulator.vehicles").joinpath("signals.toml").read_text(encoding="utf-8")
    raw = tomllib.loads(text).get("signals", {})
    catalog = get_catalog()
    entries = {}
    for code, fields in raw.items():
        try:
            catalog.signal(code)
            entries[code] = SignalSim.model_validate({**fields, "code": code})
        except ValidationError as exc:
            raise SignalMapError(f"signals.toml [signals.{code}]: {describe_validation_error(exc)}") from exc
        except ValueError as exc:
            raise SignalMapError(f"signals.toml: {exc}") from exc
    missing = [s.code for s in catalog.signals if s.code not in entries]
    if missing:
        raise SignalMapError(f"signals.toml has no entry for {', '.join(missing)}")
    return entries


@cache
def diagnostics() -> tuple[SignalSim, ...]:
    """The status diagnostics (those with a trouble code), in the file's order."""
    return tuple(sim for sim in signal_map().values() if sim.dtc is not None)
