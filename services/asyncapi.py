"""The AsyncAPI 3 document of the gatekeeper (and the responses the vehicles service sends on the decisions it
allows): which streams it receives from and sends to, and their messages.

Written from the message models and the keyspace, not by FastStream's generator: the gatekeeper reads and writes
its streams with its own loop, so FastStream knows them only as declared publishers, and described all four as
`send` operations with a correlation-id header that no entry has. This document describes the gatekeeper
application as AsyncAPI means it: `receive` for the streams it reads (requests, as the consumer group; connection
events, followed without a group), `send` for those it writes (decisions, dead letters).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from schemas.contract import json_schema
from schemas.messages import (
    CONTRACT_VERSION,
    ConnectionEventMessage,
    DeadLetterMessage,
    DecisionMessage,
    RequestMessage,
    ResponseMessage,
)
from services.settings import Settings

_ENVELOPE = "Each stream entry has one field, `data`: this message as UTF-8 JSON (docs/contract.md)."


def asyncapi_document(settings: Settings) -> dict[str, Any]:
    """The document for these settings' key prefix, group and Redis host (a password is never included)."""
    keys = settings.keys
    shard = keys.shard(0)
    sharded = (
        f" Shard 0 of {keys.shards}: every shard has one such stream under its own hash tag." if keys.sharded else ""
    )
    group = settings.group
    streams = (
        # channel, address, message name, model, who writes and reads it, the gatekeeper's operation and action
        ("requests", shard.requests, "request", RequestMessage,
         f"In: any client writes requests (XADD); the gatekeeper workers read them as the consumer group `{group}`.",
         "decideRequests", "receive", f"Read as one consumer of the group `{group}`, decided, acknowledged."),
        ("decisions", shard.decisions, "decision", DecisionMessage,
         "Out: the gatekeeper writes exactly one decision per request_id; each downstream service reads it with a "
         "consumer group of its own.",
         "publishDecisions", "send", "One decision per request_id, written with the request's acknowledgement."),
        ("deadletter", shard.deadletter, "deadletter", DeadLetterMessage,
         "Out: the gatekeeper writes entries that failed too often, with their fields and why; operators read it.",
         "publishDeadLetters", "send", "An entry delivered more than FLEETGATE_MAX_DELIVERIES times, given up."),
        ("connection-events", shard.connection_events, "connection-event", ConnectionEventMessage,
         "Out of the Connect service: every grant, re-authentication and revocation. The gatekeeper follows it "
         "(XREAD, no group) to drop cached grants; anyone may read it.",
         "followConnectionEvents", "receive", "Followed from the stream's end; each event drops a cached grant."),
        ("responses", shard.responses, "response", ResponseMessage,
         f"Out of the vehicles service, which reads the decisions as the consumer group `{settings.vehicles_group}`:"
         " what the vehicle answered, exactly one per ALLOWED request_id; each downstream service reads it with a "
         "consumer group of its own.",
         "publishResponses", "send", "The vehicles service's answer to an ALLOWED request, with its state change."),
    )  # fmt: skip
    schemas: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for channel, address, name, model, description, operation, action, summary in streams:
        messages[name] = {
            "name": name,
            "title": model.__name__,
            "summary": (model.__doc__ or "").strip().splitlines()[0],
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{_add_schema(schemas, model)}"},
        }
        channels[channel] = {
            "address": address,
            "title": channel,
            "description": f"{description}{sharded} {_ENVELOPE}",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        operations[operation] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{channel}"},
            "summary": summary,
            "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"}],
        }
    operations["decideRequests"]["x-consumer-group"] = group
    server = urlsplit(settings.redis_url)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "fleetgate gatekeeper",
            "version": str(CONTRACT_VERSION),
            "description": "Redis Streams of the fleetgate gatekeeper: requests in, decisions out (docs/contract.md).",
        },
        "defaultContentType": "application/json",
        "servers": {
            "redis": {
                "host": f"{server.hostname}:{server.port or 6379}",
                "protocol": "redis",
                "description": "FLEETGATE_REDIS_URL (a Redis 7 server, or a node of a Redis Cluster).",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def _add_schema(schemas: dict[str, Any], model: type[BaseModel]) -> str:
    """Put the model's JSON Schema (and those it refers to) under components/schemas; returns its name."""
    schema = json_schema(model, ref_template="#/components/schemas/{model}")  # as in docs/contract/*.schema.json
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    return model.__name__
