"""A set of permissions, each optional or required, as two bitmasks over the catalog's permissions.

Bit i stands for the i-th permission of `catalog.toml`. The masks are what a connection stores and what the
hot path tests (`mask >> bit & 1`); names appear only at the edges (scope strings, JSON, tables).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Self, TypedDict

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from schemas.catalog import get_catalog


class PermissionItem(TypedDict):
    """One permission as it appears on the wire."""

    name: str
    required: bool


@dataclass(frozen=True, slots=True)
class PermissionSet:
    """A set of the catalog's permissions, each required or optional, as two bitmasks."""

    granted: int = 0
    """Bitmask of the permissions in the set."""
    required: int = 0
    """Bitmask of those that are required; always a subset of `granted`."""

    def __post_init__(self) -> None:
        if self.required & ~self.granted:
            raise ValueError("required permissions must be a subset of the granted ones")
        if self.granted >> len(get_catalog().permission_names):
            raise ValueError("permission mask has bits beyond the catalog's permissions")

    @classmethod
    def of(cls, items: Iterable[tuple[str, bool]]) -> Self:
        """Build from (name, required) pairs; a name given twice is required if either says so."""
        catalog = get_catalog()
        granted = required = 0
        for name, is_required in items:
            bit = 1 << catalog.permission_bit(name)
            granted |= bit
            if is_required:
                required |= bit
        return cls(granted, required)

    @classmethod
    def optional(cls, names: Iterable[str]) -> Self:
        return cls.of((name, False) for name in names)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.granted >> get_catalog().permission_bit(name) & 1)

    def __len__(self) -> int:
        return self.granted.bit_count()

    def __iter__(self) -> Iterator[str]:
        """Permission names, sorted by name."""
        return iter(sorted(_names(self.granted)))

    def is_required(self, name: str) -> bool:
        return bool(self.required >> get_catalog().permission_bit(name) & 1)

    @property
    def required_names(self) -> list[str]:
        return sorted(_names(self.required))

    def items(self) -> list[PermissionItem]:
        """The wire form: `[{"name": ..., "required": ...}]`, sorted by name."""
        return [PermissionItem(name=name, required=bool(self.required >> bit & 1)) for name, bit in _sorted(self)]

    @classmethod
    def from_items(cls, items: Iterable[PermissionItem]) -> Self:
        return cls.of((item["name"], item["required"]) for item in items)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: type[Any], handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        # On the wire a set is its list of items; in Python, an instance is accepted as is.
        from_items = core_schema.no_info_after_validator_function(
            cls.from_items,
            core_schema.list_schema(
                core_schema.typed_dict_schema(
                    {
                        "name": core_schema.typed_dict_field(core_schema.str_schema()),
                        "required": core_schema.typed_dict_field(core_schema.bool_schema()),
                    }
                )
            ),
        )
        return core_schema.json_or_python_schema(
            json_schema=from_items,
            python_schema=core_schema.union_schema([core_schema.is_instance_schema(cls), from_items]),
            serialization=core_schema.plain_serializer_function_ser_schema(lambda value: value.items()),
        )


def _names(mask: int) -> Iterator[str]:
    names = get_catalog().permission_names
    return (name for bit, name in enumerate(names) if mask >> bit & 1)


def _sorted(permissions: PermissionSet) -> list[tuple[str, int]]:
    names = get_catalog().permission_names
    return sorted((names[bit], bit) for bit in range(len(names)) if permissions.granted >> bit & 1)
