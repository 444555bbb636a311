"""The OpenAPI document's links (services/http/links.py) are true of the document: each names an operation and
parameters it has, takes its values from where the source's answer has them, and the user's vehicle list links
to every operation a user's token calls on a vehicle; schemathesis builds its state machine from them alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import schemathesis
from schemathesis.config import SchemathesisConfig

from fleetgate.contract import openapi_json
from services.http.links import operation_ref

DOCUMENTED_LINKS_ONLY: dict[str, Any] = {
    "phases": {"stateful": {"inference": {"algorithms": []}, "generation": {"mode": "positive"}}}
}
"""schemathesis otherwise adds links it guesses from names (`$response.body#/vehicle_id`, which no answer has)."""
DOCUMENT: dict[str, Any] = json.loads(openapi_json())
OPERATIONS = {
    operation_ref(method, path): operation
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
}


def _links() -> Iterator[tuple[dict[str, Any], dict[str, Any], str, dict[str, Any]]]:
    """(source operation, its response, link name, link) for every link of the document."""
    for item in DOCUMENT["paths"].values():
        for operation in item.values():
            for response in operation["responses"].values():
                for name, link in response.get("links", {}).items():
                    yield operation, response, name, link


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = DOCUMENT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _has(schema: dict[str, Any], pointer: list[str]) -> bool:
    """Whether an answer of this JSON Schema can have a value at the pointer (any branch of an anyOf; an object
    open to any property has them all)."""
    schema = _resolve(schema)
    if not pointer:
        return True
    if "anyOf" in schema:
        return any(_has(branch, pointer) for branch in schema["anyOf"])
    head, rest = pointer[0], pointer[1:]
    if schema.get("type") == "array":
        return head.isdigit() and _has(schema["items"], rest)
    if head in schema.get("properties", {}):
        return _has(schema["properties"][head], rest)
    return schema.get("additionalProperties") is True and not schema.get("properties")


def test_every_link_names_an_operation_of_the_document_and_its_parameters() -> None:
    links = list(_links())
    assert len(links) == 28 + 2 * 32 + 1 + 1  # vehicle list, both management listings, token refresh, v3 signals
    for source, response, name, link in links:
        target = OPERATIONS[link["operationRef"]]
        parameters = {(p["in"], p["name"]) for p in target.get("parameters", [])}
        for qualified in link.get("parameters", {}):
            where, _, parameter = qualified.rpartition(".")
            assert any(p == parameter and where in ("", at) for at, p in parameters), (name, qualified)
        body = link.get("requestBody", {})
        for expression in [*link.get("parameters", {}).values(), *body.values()]:
            if not expression.startswith("$"):
                continue  # a literal (the refresh's grant_type)
            if expression.startswith("$request."):
                _, at, asked = expression.split(".")
                assert (at, asked) in {(p["in"], p["name"]) for p in source["parameters"]}, (name, expression)
            else:
                pointer = expression.removeprefix("$response.body#/").split("/")
                assert _has(response["content"]["application/json"]["schema"], pointer), (name, expression)


def test_the_vehicle_list_links_to_every_operation_of_a_users_token_on_a_vehicle() -> None:
    links = DOCUMENT["paths"]["/v2.0/vehicles"]["get"]["responses"]["200"]["links"]
    on_a_vehicle = {
        operation_ref(method, path)
        for path, item in DOCUMENT["paths"].items()
        if "{vehicle_id}" in path
        for method, operation in item.items()
        if {"accessToken": []} in operation["security"]
    }
    assert {link["operationRef"] for link in links.values()} == on_a_vehicle
    assert {json.dumps(link["parameters"]) for link in links.values()} == {
        '{"vehicle_id": "$response.body#/vehicles/0"}'
    }


def test_schemathesis_builds_its_state_machine_from_the_documented_links() -> None:
    schema = schemathesis.openapi.from_dict(DOCUMENT, config=SchemathesisConfig.from_dict(DOCUMENTED_LINKS_ONLY))
    machine = schema.as_state_machine()
    assert set(machine.bundles) == {
        "GET /v2.0/vehicles -> 200",
        "GET /v2.0/management/connections -> 200",
        "GET /v2.0/management/connections/ -> 200",
        "GET /v3/vehicles/{vehicle_id}/signals -> 200",
        "POST /oauth/token -> 200",
    }
