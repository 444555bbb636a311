"""The message contract as JSON Schema files, generated from the models (checked in under docs/contract/)."""

from __future__ import annotations

import json

from schemas.messages import CONTRACT_VERSION, MESSAGE_TYPES


def json_schema_files() -> dict[str, str]:
    """File name -> JSON Schema text, one per message type."""
    files = {}
    for name, model in MESSAGE_TYPES.items():
        schema = model.model_json_schema(mode="serialization")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://fleetgate.dev/contract/{name}.v{CONTRACT_VERSION}.schema.json"
        files[f"{name}.v{CONTRACT_VERSION}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return files
