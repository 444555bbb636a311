"""The signal and command catalog: one data file (`catalog.toml`), validated once at load time.

Nothing else in the code base names a signal, command or permission: everything looks them up here.
The order of `permissions` in the file is a storage contract (bit i of a permission mask is the i-th
permission), so the list is append-only.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_serializer, model_validator

from schemas.errors import CatalogError, UnknownNameError
from schemas.powertrain import PHYSICAL_POWERTRAINS, Powertrain

PACKAGED_CATALOG = Path(__file__).with_name("catalog.toml")
_SIGNAL_CODE = r"^[a-z]+-[a-z]+$"
_COMMAND_NAME = r"^[a-z]+(-[a-z]+)*$"
_PERMISSION_NAME = r"^(read|control)_[a-z_]+$"

Kind = Literal["signal", "command"]


class PermissionKind(StrEnum):
    READ = "read"
    CONTROL = "control"


class Mapping(StrEnum):
    """Whether Smartcar documents the target's permission or fleetgate infers it (the reference says which)."""

    DOCUMENTED = "documented"
    INFERRED = "inferred"


class SignalShape(StrEnum):
    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    STRING = "string"
    ENUM = "enum"
    OBJECT = "object"
    LIST = "list"


class ParamType(StrEnum):
    INTEGER = "integer"
    NUMBER = "number"
    STRING = "string"
    BOOLEAN = "boolean"
    ENUM = "enum"


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Permission(_Entry):
    name: Annotated[str, Field(pattern=_PERMISSION_NAME)]
    kind: PermissionKind
    description: str

    @model_validator(mode="after")
    def _kind_matches_prefix(self) -> Permission:
        if not self.name.startswith(f"{self.kind.value}_"):
            raise ValueError(f"permission {self.name!r} is of kind {self.kind.value!r} but lacks its prefix")
        return self


class _Target(_Entry):
    permission: str
    powertrains: frozenset[Powertrain]
    mapping: Mapping
    note: str | None = None

    @property
    def key(self) -> str:
        """The name a request uses for this target: a signal's code, a command's name."""
        raise NotImplementedError

    @field_serializer("powertrains")
    def _powertrains_in_order(self, powertrains: frozenset[Powertrain]) -> list[str]:
        # A set has no order; listings and JSON should not change from run to run.
        return [p.value for p in Powertrain if p in powertrains]

    @model_validator(mode="after")
    def _physical_powertrains(self) -> _Target:
        if not self.powertrains or not self.powertrains <= PHYSICAL_POWERTRAINS:
            raise ValueError("powertrains must be a non-empty subset of ICE, HEV, PHEV, BEV")
        return self


class Signal(_Target):
    code: Annotated[str, Field(pattern=_SIGNAL_CODE)]
    name: str
    shape: SignalShape
    unit: str | None = None
    enum: tuple[str, ...] | None = None
    body: str

    @property
    def key(self) -> str:
        return self.code

    @property
    def group(self) -> str:
        return self.code.partition("-")[0]

    @model_validator(mode="after")
    def _enum_iff_enum_shape(self) -> Signal:
        if (self.shape is SignalShape.ENUM) != bool(self.enum):
            raise ValueError(f"signal {self.code!r}: `enum` values are required exactly when shape is 'enum'")
        return self


class CommandParam(_Entry):
    name: Annotated[str, Field(pattern=r"^[a-z_]+$")]
    type: ParamType
    description: str
    required: bool = True
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    pattern: str | None = None
    example: bool | int | float | str
    """A valid value, for documentation and for generating realistic requests."""

    @model_validator(mode="after")
    def _consistent(self) -> CommandParam:
        if (self.type is ParamType.ENUM) != bool(self.choices):
            raise ValueError(f"param {self.name!r}: `choices` are required exactly when type is 'enum'")
        if self.pattern is not None:
            re.compile(self.pattern)
        problem = self.problem(self.example)
        if problem is not None:
            raise ValueError(f"param {self.name!r}: its example is invalid: {problem}")
        return self

    def problem(self, value: Any) -> str | None:
        """Why `value` is not acceptable for this parameter, or None when it is."""
        kind = self.type
        # bool is an int in Python; JSON's true is not a number.
        if kind is ParamType.BOOLEAN:
            return None if isinstance(value, bool) else f"{self.name} must be a boolean"
        if kind in (ParamType.INTEGER, ParamType.NUMBER):
            wanted = int if kind is ParamType.INTEGER else (int, float)
            if isinstance(value, float) and value.is_integer():
                value = int(value)  # JSON has one number type: 80.0 and 8e1 are the integer 80
            if isinstance(value, bool) or not isinstance(value, wanted):
                return f"{self.name} must be {'an integer' if kind is ParamType.INTEGER else 'a number'}"
            if self.minimum is not None and value < self.minimum:
                return f"{self.name} must be at least {self.minimum:g}, got {value}"
            if self.maximum is not None and value > self.maximum:
                return f"{self.name} must be at most {self.maximum:g}, got {value}"
            return None
        if not isinstance(value, str):
            return f"{self.name} must be a string"
        if kind is ParamType.ENUM:
            assert self.choices is not None
            return None if value in self.choices else f"{self.name} must be one of {', '.join(self.choices)}"
        if self.pattern is not None and re.fullmatch(self.pattern, value) is None:
            return f"{self.name} does not match {self.pattern}"
        return None


class Command(_Target):
    name: Annotated[str, Field(pattern=_COMMAND_NAME)]
    description: str
    endpoint: str
    params: tuple[CommandParam, ...] = ()

    @property
    def key(self) -> str:
        return self.name

    @property
    def example_params(self) -> dict[str, bool | int | float | str]:
        """Arguments that pass `params_problem()`."""
        return {p.name: p.example for p in self.params}

    def params_problem(self, params: dict[str, Any] | None) -> str | None:
        """Why these command arguments are not acceptable, or None when they are."""
        given = params or {}
        known = {p.name for p in self.params}
        for key in given:
            if key not in known:
                return f"{self.name} takes no parameter {key!r}"
        for param in self.params:
            if param.name not in given:
                if param.required:
                    return f"{self.name} needs parameter {param.name!r}"
                continue
            problem = param.problem(given[param.name])
            if problem is not None:
                return problem
        return None


class Catalog(_Entry):
    permissions: tuple[Permission, ...]
    signals: tuple[Signal, ...]
    commands: tuple[Command, ...]
    _index: _Index = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:  # noqa: ARG002 - pydantic hook signature
        # Built once; the model is frozen, so the lookups can never go stale.
        self._index = _Index(self)

    @model_validator(mode="after")
    def _cross_references(self) -> Catalog:
        _no_duplicates("permission", [p.name for p in self.permissions])
        _no_duplicates("signal", [s.code for s in self.signals])
        _no_duplicates("command", [c.name for c in self.commands])
        permission_names = {p.name for p in self.permissions}
        for target in (*self.signals, *self.commands):
            if target.permission not in permission_names:
                raise ValueError(f"{target.key!r} needs unknown permission {target.permission!r}")
        clashes = {s.code for s in self.signals} & {c.name for c in self.commands}
        if clashes:
            raise ValueError(f"names used by both a signal and a command: {sorted(clashes)}")
        return self

    @property
    def permission_names(self) -> tuple[str, ...]:
        return self._index.permission_names

    def permission(self, name: str) -> Permission:
        found = self._index.permissions.get(name)
        if found is None:
            raise UnknownNameError("permission", name, close_matches(name, self.permission_names))
        return found

    def signal(self, code: str) -> Signal:
        found = self._index.signals.get(code)
        if found is None:
            raise UnknownNameError("signal", code, close_matches(code, self._index.signals))
        return found

    def command(self, name: str) -> Command:
        found = self._index.commands.get(name)
        if found is None:
            raise UnknownNameError("command", name, close_matches(name, self._index.commands))
        return found

    def signal_or_command(self, key: str) -> Signal | Command:
        found = self._index.signals.get(key) or self._index.commands.get(key)
        if found is None:
            every = [*self._index.signals, *self._index.commands]
            raise UnknownNameError("signal or command", key, close_matches(key, every))
        return found

    def permission_bit(self, name: str) -> int:
        """The permission's bit in a permission mask (its position in the data file)."""
        bit = self._index.bits.get(name)
        if bit is None:
            raise UnknownNameError("permission", name, close_matches(name, self.permission_names))
        return bit

    def default_capabilities(self, powertrain: Powertrain) -> frozenset[str]:
        """What a vehicle of this powertrain supports unless told otherwise (see _Index for UNKNOWN)."""
        return self._index.defaults[powertrain]

    def physically_possible(self, powertrain: Powertrain) -> frozenset[str]:
        """Every signal code and command name a vehicle of this powertrain could have."""
        return self._index.possible[powertrain]


class _Index:
    __slots__ = ("bits", "commands", "defaults", "permission_names", "permissions", "possible", "signals")

    def __init__(self, catalog: Catalog) -> None:
        self.permissions = {p.name: p for p in catalog.permissions}
        self.permission_names = tuple(self.permissions)
        self.bits = {name: i for i, name in enumerate(self.permission_names)}
        self.signals = {s.code: s for s in catalog.signals}
        self.commands = {c.name: c for c in catalog.commands}
        targets = (*catalog.signals, *catalog.commands)
        self.possible = {p: frozenset(t.key for t in targets if p in t.powertrains) for p in PHYSICAL_POWERTRAINS}
        self.possible[Powertrain.UNKNOWN] = frozenset(t.key for t in targets)
        self.defaults = dict(self.possible)
        # An UNKNOWN powertrain gets only what every physical powertrain has: the conservative default.
        self.defaults[Powertrain.UNKNOWN] = frozenset.intersection(*(self.possible[p] for p in PHYSICAL_POWERTRAINS))


def close_matches(name: str, candidates: Any) -> list[str]:
    return difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)


def _no_duplicates(what: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"duplicate {what} {name!r}")
        seen.add(name)


def load_catalog(path: Path | None = None) -> Catalog:
    """Read and validate a catalog file (the packaged one by default)."""
    path = path or PACKAGED_CATALOG
    try:
        return Catalog.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as exc:
        raise CatalogError(f"invalid catalog {path}: {exc}") from exc


@cache
def get_catalog() -> Catalog:
    """The packaged catalog, loaded once per process."""
    return load_catalog()
