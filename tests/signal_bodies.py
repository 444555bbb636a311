"""A validator of signal bodies, built from the catalog's own description of each signal (shape, unit, enum, body).

The catalog's `body` field is the reference's shorthand, for example
`{values[{row,column,isOpen,isLocked?}],rowCount,columnCount}`: `{...}` an object, `name[...]` a list (of the
objects inside, if any), `name?` or `[,name]` an optional key, `name:"x"` a literal, `name A/B/C` an enum,
`start/endTime` two keys, `...` more keys. Scalar shapes are `{value[, unit]}` (plus any list the shorthand
names); a shorthand without braces (`bool`, `records[]`) describes the value(s) of `{value}` or `{values}`.
Extra keys are allowed everywhere (Smartcar adds fields); missing ones, wrong types, units and enums are not.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from schemas.catalog import Signal, SignalShape

_PAIR = re.compile(r"^(\w+)/(\w+?)([A-Z]\w*)(.*)$")
_ITEM = re.compile(r"^([A-Za-z_]\w*)(\??)(.*)$")
_ENUM = re.compile(r"^[A-Z_]+(/[A-Z_]+)+$")


@dataclass(frozen=True)
class Key:
    name: str
    optional: bool = False
    literal: Any = None
    choices: tuple[str, ...] | None = None
    is_list: bool = False
    is_object: bool = False
    inner: dict[str, Key] | None = None
    """The keys of the object (or of each list item) when the shorthand gives them."""


def split_top(text: str) -> list[str]:
    """Split at commas outside brackets and braces."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "[{"
        depth -= char in "]}"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current] if current.strip() else parts


def parse_object(text: str) -> dict[str, Key]:
    """The keys of an object shorthand (without its braces)."""
    keys: dict[str, Key] = {}
    for item in split_top(text):
        for key in _parse_item(item.strip()):
            keys[key.name] = key
    return keys


def _parse_item(item: str) -> list[Key]:
    if item in ("", "...", "\u2026"):
        return []
    pair = _PAIR.match(item)
    if pair:
        first, second, suffix, rest = pair.groups()
        return [*_parse_item(first + suffix + rest), *_parse_item(second + suffix + rest)]
    match = _ITEM.match(item)
    assert match is not None, f"cannot read body shorthand item {item!r}"
    name, optional, rest = match[1], bool(match[2]), match[3]
    if rest.startswith("[,"):  # name[,other]: other is optional
        return [Key(name), *(Key(k.name, optional=True) for k in _parse_item(rest[2:-1]))]
    if rest.startswith("["):
        inner = rest[1:-1].strip()
        return [Key(name, optional, is_list=True, inner=parse_object(inner[1:-1]) if inner.startswith("{") else None)]
    if rest.startswith("{"):
        inner_keys = parse_object(rest[1:-1])
        return [Key(name, optional, is_object=True, inner=inner_keys or None)]
    if rest.startswith(":"):
        return [Key(name, optional, literal=json.loads(rest[1:]))]
    choices = next((tuple(t.split("/")) for t in rest.split() if _ENUM.match(t)), None)
    return [Key(name, optional, choices=choices)]


def _check_keys(where: str, body: Any, keys: dict[str, Key]) -> list[str]:
    if not isinstance(body, dict):
        return [f"{where}: expected an object, got {body!r}"]
    problems = []
    for key in keys.values():
        at = f"{where}.{key.name}"
        if key.name not in body:
            problems += [] if key.optional else [f"{at}: missing"]
            continue
        value = body[key.name]
        if key.literal is not None and value != key.literal:
            problems.append(f"{at}: expected {key.literal!r}, got {value!r}")
        if key.choices is not None and value not in key.choices:
            problems.append(f"{at}: {value!r} is not one of {key.choices}")
        if key.is_list:
            if not isinstance(value, list):
                problems.append(f"{at}: expected a list, got {value!r}")
            elif key.inner:
                for i, entry in enumerate(value):
                    problems += _check_keys(f"{at}[{i}]", entry, key.inner)
        if key.is_object and not (value is None or isinstance(value, dict)):
            problems.append(f"{at}: expected an object, got {value!r}")
        if key.is_object and key.inner and isinstance(value, dict):
            problems += _check_keys(at, value, key.inner)
    return problems


def _scalar_problem(signal: Signal, value: Any) -> str | None:
    shape = signal.shape
    if shape is SignalShape.BOOLEAN:
        ok = isinstance(value, bool)
    elif shape is SignalShape.INTEGER:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif shape is SignalShape.NUMBER:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    elif shape is SignalShape.STRING:
        ok = isinstance(value, str) and value != ""
    else:
        ok = signal.enum is not None and value in signal.enum
    return None if ok else f"value: {value!r} is not a valid {shape.value}"


def body_problems(signal: Signal, body: Any) -> list[str]:
    """Why `body` is not a valid body of `signal`, per the catalog (empty when it is)."""
    try:
        json.dumps(body, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return [f"not JSON-ready: {exc}"]
    if not isinstance(body, dict):
        return [f"expected an object, got {body!r}"]
    text = signal.body.strip()
    described = parse_object(text[1:-1]) if text.startswith("{") else {}
    problems = []
    if signal.shape in (SignalShape.OBJECT, SignalShape.LIST):
        keys = described or {"values": Key("values", is_list=True)}
        if signal.shape is SignalShape.LIST and not any(k.is_list for k in keys.values()):
            problems.append("a list signal's shorthand names no list")
        problems += _check_keys("body", body, keys)
    else:
        problems += _check_keys("body", body, {k: v for k, v in described.items() if v.is_list})
        problem = _scalar_problem(signal, body.get("value")) if "value" in body else "value: missing"
        problems += [problem] if problem else []
    if signal.unit is not None or "unit" in described:
        if "unit" not in body:
            problems.append("unit: missing")
        elif signal.unit is not None and body["unit"] != signal.unit:
            problems.append(f"unit: expected {signal.unit!r}, got {body['unit']!r}")
    return problems
