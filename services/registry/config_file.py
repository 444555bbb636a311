"""Reading a Vehicle Access config file (TOML or JSON, same keys), with errors that name the line or key; and a
config as JSON, with the permissions it derives."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from schemas.access import VehicleAccessConfig, derive
from schemas.errors import describe_validation_error
from schemas.scope import render_scope
from services.errors import ConfigFileError


def load_config_file(path: Path) -> VehicleAccessConfig:
    """Parse and validate a config file; the format follows the suffix (`.json`, else TOML)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"{path}: cannot read: {exc}") from exc
    return parse_config(text, source=str(path), as_json=path.suffix.lower() == ".json")


def parse_config(text: str, *, source: str = "<config>", as_json: bool = False) -> VehicleAccessConfig:
    data: Any
    try:
        data = json.loads(text) if as_json else tomllib.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigFileError(f"{source}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{source}: invalid TOML: {exc}") from exc  # tomllib names the line and column
    except RecursionError as exc:  # both parsers recurse per nesting level: `[[[[...` would escape as a traceback
        raise ConfigFileError(f"{source}: nested too deeply to read") from exc
    if not isinstance(data, dict):
        raise ConfigFileError(f"{source}: expected an object with `signals` and `commands`, got {type(data).__name__}")
    if "version" in data:
        raise ConfigFileError(f"{source}: `version` is assigned when the config is published; remove it")
    try:
        return VehicleAccessConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigFileError(f"{source}: {describe_validation_error(exc)}") from exc


def config_json(config: VehicleAccessConfig) -> dict[str, Any]:
    """The config as `fleetgate access show` prints it: its version, selections, permissions and scope string."""
    permissions = derive(config)
    return {
        "version": config.version,
        "signals": [s.model_dump() for s in config.signals],
        "commands": [c.model_dump() for c in config.commands],
        "permissions": permissions.items(),
        "scope": render_scope(permissions),
    }
