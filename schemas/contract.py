"""The message contract as JSON Schema files, generated from the models (checked in under docs/contract/)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import DEFAULT_REF_TEMPLATE

from schemas.messages import CONTRACT_VERSION, MESSAGE_TYPES, RequestMessage


def json_schema(model: type[BaseModel], ref_template: str = DEFAULT_REF_TEMPLATE) -> dict[str, Any]:
    """A message's JSON Schema: what a producer may send (a request: defaults may be left out), or what fleetgate
    writes (every field, always: the output models mark their defaults required in serialization mode)."""
    return model.model_json_schema(
        mode="validation" if model is RequestMessage else "serialization", ref_template=ref_template
    )


def json_schema_files() -> dict[str, str]:
    """File name -> JSON Schema text, one per message type."""
    files = {}
    for name, model in MESSAGE_TYPES.items():
        schema = json_schema(model)
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://fleetgate.dev/contract/{name}.v{CONTRACT_VERSION}.schema.json"
        files[f"{name}.v{CONTRACT_VERSION}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return files
