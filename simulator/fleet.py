"""A simulated fleet: makes, models, model years and powertrains, each vehicle with a realistic capability set.

Capabilities start from the catalog's powertrain applicability (a BEV has no fuel level, an ICE no traction
battery) and then lose what the make never offers and what the model year predates. Generation is a pure
function of (count, seed, mix): the same arguments give the same fleet, on any machine.
"""

from __future__ import annotations

import random
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.catalog import get_catalog
from schemas.errors import describe_validation_error
from schemas.powertrain import PHYSICAL_POWERTRAINS, Powertrain
from schemas.vehicle import Vehicle, placeholder_vin
from simulator.errors import MixError

Share = Annotated[float, Field(ge=0)]


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelLine(_Entry):
    name: Annotated[str, Field(min_length=1)]
    powertrain: Powertrain


class Make(_Entry):
    name: Annotated[str, Field(min_length=1)]
    share: Share
    years: tuple[int, int]
    lacks: frozenset[str] = frozenset()
    """Signal codes and command names no vehicle of this make offers."""
    models: Annotated[tuple[ModelLine, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _years_in_order(self) -> Make:
        if self.years[0] > self.years[1]:
            raise ValueError(f"years {list(self.years)}: the first must not be after the last")
        return self


class OlderRule(_Entry):
    before: int
    """Vehicles of a model year before this lack `lacks`."""
    lacks: frozenset[str]


class FleetMix(_Entry):
    powertrains: dict[Powertrain, Share]
    older: tuple[OlderRule, ...] = ()
    makes: Annotated[tuple[Make, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _consistent(self) -> FleetMix:
        catalog = get_catalog()
        for name in sorted({n for m in self.makes for n in m.lacks} | {n for r in self.older for n in r.lacks}):
            catalog.signal_or_command(name)  # raises, with close matches, for a name the catalog does not know
        if not any(self.powertrains.values()):
            raise ValueError("powertrains: at least one share must be above 0")
        for powertrain, share in self.powertrains.items():
            if share and powertrain in PHYSICAL_POWERTRAINS and not self.makes_with(powertrain):
                raise ValueError(f"powertrains: {powertrain} has a share but no make has a {powertrain} model")
        return self

    def makes_with(self, powertrain: Powertrain) -> list[Make]:
        """The makes (with a share) that sell a model of this powertrain."""
        return [m for m in self.makes if m.share and any(line.powertrain is powertrain for line in m.models)]


@cache
def default_mix() -> FleetMix:
    return _parse(resources.files("simulator").joinpath("fleet_mix.toml").read_text(), "fleet_mix.toml")


def load_mix(path: Path | None) -> FleetMix:
    """The mix in `path` (TOML, the shape of simulator/fleet_mix.toml), or the default one."""
    if path is None:
        return default_mix()
    try:
        text = path.read_text()
    except OSError as exc:
        raise MixError(f"cannot read fleet mix {path}: {exc.strerror}") from exc
    return _parse(text, str(path))


def _parse(text: str, source: str) -> FleetMix:
    try:
        return FleetMix.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise MixError(f"{source}: not valid TOML: {exc}") from exc
    except ValidationError as exc:
        raise MixError(f"{source}: {describe_validation_error(exc)}") from exc


def fleet_ids(count: int, id_prefix: str = "sim-") -> list[str]:
    """The ids `generate_fleet(count, ..., id_prefix=id_prefix)` gives its vehicles, without generating them."""
    return [f"{id_prefix}{n:06d}" for n in range(count)]


def generate_fleet(count: int, seed: int, mix: FleetMix | None = None, id_prefix: str = "sim-") -> list[Vehicle]:
    """`count` vehicles, `{id_prefix}000000` onwards, drawn from `mix` with a generator seeded by `seed`."""
    mix = mix or default_mix()
    rng = random.Random(seed)
    catalog = get_catalog()
    powertrains = [p for p, share in mix.powertrains.items() if share]
    weights = [mix.powertrains[p] for p in powertrains]
    makes_by_powertrain = {p: mix.makes_with(p) for p in PHYSICAL_POWERTRAINS}
    any_make = [m for m in mix.makes if m.share]
    fleet = []
    for vehicle_id in fleet_ids(count, id_prefix):
        powertrain = rng.choices(powertrains, weights)[0]
        candidates = any_make if powertrain is Powertrain.UNKNOWN else makes_by_powertrain[powertrain]
        make = rng.choices(candidates, [m.share for m in candidates])[0]
        lines = [line for line in make.models if powertrain is Powertrain.UNKNOWN or line.powertrain is powertrain]
        line = rng.choice(lines)
        year = rng.randint(*make.years)
        lacks = make.lacks.union(*(rule.lacks for rule in mix.older if year < rule.before))
        fleet.append(
            Vehicle(
                id=vehicle_id,
                vin=placeholder_vin(vehicle_id),
                make=make.name,
                model=line.name,
                year=year,
                powertrain=powertrain,
                capabilities=catalog.default_capabilities(powertrain) - lacks,
            )
        )
    return fleet
