"""Vehicle Access: an app's selection of signals and commands, and the least permission set it needs."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.catalog import get_catalog
from schemas.errors import ConfigError
from schemas.permissions import PermissionSet


class _Selection(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    required: bool = False
    """Required permissions are locked on the grant screen; optional ones can be unchecked."""

    @property
    def key(self) -> str:
        """The selected signal code or command name."""
        raise NotImplementedError


class SignalSelection(_Selection):
    code: str

    @property
    def key(self) -> str:
        return self.code

    @field_validator("code")
    @classmethod
    def _known(cls, code: str) -> str:
        get_catalog().signal(code)
        return code


class CommandSelection(_Selection):
    name: str

    @property
    def key(self) -> str:
        return self.name

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        get_catalog().command(name)
        return name


class VehicleAccessConfig(BaseModel):
    """What an app selected in Vehicle Access; `version` is set when the config is published."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int | None = Field(default=None, ge=1)
    signals: tuple[SignalSelection, ...] = ()
    commands: tuple[CommandSelection, ...] = ()

    @model_validator(mode="after")
    def _non_empty_without_duplicates(self) -> VehicleAccessConfig:
        if not self.signals and not self.commands:
            raise ValueError("select at least one signal or command")
        for what, names in (("signal", [s.code for s in self.signals]), ("command", [c.name for c in self.commands])):
            seen: set[str] = set()
            for name in names:
                if name in seen:
                    raise ValueError(f"{what} {name!r} is selected twice")
                seen.add(name)
        return self

    @classmethod
    def select(
        cls, signals: Iterable[str] = (), commands: Iterable[str] = (), required: Iterable[str] = ()
    ) -> VehicleAccessConfig:
        """Build a config from names; `required` lists the signal codes and command names to mark required."""
        wanted = set(required)
        signal_codes, command_names = list(dict.fromkeys(signals)), list(dict.fromkeys(commands))
        stray = wanted - set(signal_codes) - set(command_names)
        if stray:
            raise ConfigError(f"marked required but not selected: {', '.join(sorted(stray))}")
        return cls(
            signals=tuple(SignalSelection(code=c, required=c in wanted) for c in signal_codes),
            commands=tuple(CommandSelection(name=n, required=n in wanted) for n in command_names),
        )


def derive(config: VehicleAccessConfig) -> PermissionSet:
    """The minimal permission set covering every selection.

    Each selection needs exactly one permission, so the union of those is both sufficient and minimal.
    A permission is required when any selection that needs it is required.
    """
    catalog = get_catalog()
    return PermissionSet.of(
        (catalog.signal_or_command(s.key).permission, s.required) for s in (*config.signals, *config.commands)
    )
