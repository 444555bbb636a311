"""From a raw stream entry to a request, or to the reason it is REJECTED. Never raises on bad input."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from schemas.catalog import Command, Signal, get_catalog
from schemas.errors import describe_validation_error
from schemas.outbound import Rejection
from schemas.request_decoder import Request, read_request

DATA = b"data"
_CATALOG_TARGETS: dict[str, dict[str, Signal | Command]] = {
    "signal": {signal.code: signal for signal in get_catalog().signals},
    "command": {command.name: command for command in get_catalog().commands},
}
_ECHOED = ("connection_id", "vehicle_id", "kind", "target")


def read_entry(
    entry_id: bytes, fields: dict[bytes, bytes], max_payload_bytes: int, unreadable_prefix: str = "unreadable:"
) -> Request | Rejection:
    """The request in an entry's `data` field, or a Rejection saying what is wrong with it.

    An entry without a readable request id is answered under `unreadable_prefix` and its entry id (the shard's
    prefix: ShardKeys.unreadable_prefix): stable across redeliveries, so it is decided once.
    """
    data = fields.get(DATA)
    if data is not None and len(data) <= max_payload_bytes:
        try:
            return read_request(data)
        except ValidationError as exc:
            return _rejection(data, exc, unreadable_prefix + entry_id.decode())
    if data is None:
        return Rejection(unreadable_prefix + entry_id.decode(), "The entry has no `data` field.", {})
    return Rejection(
        unreadable_prefix + entry_id.decode(),
        f"The payload is {len(data)} bytes; the limit is {max_payload_bytes}.",
        {},
    )


def _rejection(data: bytes, exc: ValidationError, unreadable_id: str) -> Rejection:
    try:
        raw: Any = json.loads(data)
    except (ValueError, RecursionError):
        return Rejection(unreadable_id, "The payload is not valid UTF-8 JSON.", {})
    if not isinstance(raw, dict):
        return Rejection(unreadable_id, f"The payload is a JSON {type(raw).__name__}, not an object.", {})
    request_id = raw.get("request_id")
    echo = {key: raw[key] for key in _ECHOED if _echoable(raw.get(key))}
    return Rejection(
        request_id if _echoable(request_id) and request_id else unreadable_id,
        "Invalid request: " + describe_validation_error(exc).replace("\n", "; "),
        echo,
        _permission_of(echo.get("kind"), echo.get("target")),
    )


def _permission_of(kind: str | None, target: str | None) -> str | None:
    """The permission a known target needs (null only for an unknown one, as in every decision)."""
    index = _CATALOG_TARGETS.get(kind or "")
    found = index.get(target or "") if index is not None else None
    return found.permission if found is not None else None


def _echoable(value: Any) -> bool:
    """A string a decision can carry: short, and encodable as UTF-8.

    Python's JSON decoder accepts lone surrogate escapes (`"\\ud800"`), which no UTF-8 output can hold: echoing
    one made the decision unencodable, so the entry was retried and dead-lettered instead of REJECTED.
    """
    if not isinstance(value, str) or len(value) > 128:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True
