"""The gatekeeper's request decoder: msgspec for the common valid request, `RequestMessage` (pydantic) for the rest.

`RequestMessage` is the reference: what it accepts is a request, with its values, and what it refuses is REJECTED
with its words. `read_request` gives the same answers for less: msgspec decodes a payload into `Request` in about a
fifth of pydantic's time, and its result is taken only where it must equal pydantic's:
- msgspec's own checks are those of the model or stricter (exact JSON, no lone surrogates, no NaN, types without
  coercion, string lengths, the `kind` and `v` literals, unknown fields ignored, the last of duplicate keys); a
  payload that is not ASCII (msgspec does not check the UTF-8 of what it skips) or nested deeper than a few levels
  goes to pydantic;
- the ids and `issued_at` are checked by the model's own validators, once per distinct value (they repeat: a
  fleet's connections and vehicles, a second's timestamps), and remembered.
Anything msgspec refuses is decoded by pydantic: a valid request it could not take (a leap second, `v` as 1.0,
a 20-digit argument) is still accepted, and an invalid one gets pydantic's error. tests/test_request_decoder.py
checks that both agree on every input of the fuzzers' strategies.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec
from pydantic import TypeAdapter

from schemas.catalog import Kind
from schemas.messages import ParamValue, RequestMessage, decode_request
from schemas.rfc3339 import Rfc3339DateTime
from schemas.vehicle import ResourceId

_Text = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]

NESTING_FOR_MSGSPEC: Final = 8
"""Payloads with more `{` and `[` than this go to pydantic, whose nesting limit msgspec does not share..."""

UNCOUNTED_BELOW: Final = 400
"""... but only one of 400 bytes or more can be nested past that limit (200 levels, 2 bytes each): a request is
usually shorter, and is not counted."""

REMEMBERED: Final = 100_000
"""How many distinct valid ids and timestamps are remembered (then forgotten at once: bounded memory)."""


class Request(msgspec.Struct, frozen=True, gc=False):
    """A valid request, as `RequestMessage` reads it, on the gatekeeper's hot path. `issued_at` is kept as text:
    as sent, or RFC 3339 as msgspec writes it for a request pydantic read (nothing downstream reads it)."""

    request_id: _Text
    connection_id: str
    vehicle_id: str
    kind: Kind
    target: _Text
    issued_at: str
    params: dict[str, ParamValue] | None = None
    v: Literal[1] = 1


_DECODE = msgspec.json.Decoder(Request).decode
_RESOURCE_ID = TypeAdapter(ResourceId).validate_python
_ISSUED_AT = TypeAdapter(Rfc3339DateTime).validate_json
_valid_ids: set[str] = set()
_valid_times: set[str] = set()


def read_request(data: bytes) -> Request:
    """The request in `data`; raises pydantic.ValidationError exactly where `decode_request` does."""
    shallow = len(data) < UNCOUNTED_BELOW or data.count(b"{") + data.count(b"[") <= NESTING_FOR_MSGSPEC
    if shallow and data.isascii():
        try:
            request = _DECODE(data)
        except msgspec.DecodeError:  # its ValidationError too
            pass
        else:
            ids_valid = _valid_id(request.connection_id) and _valid_id(request.vehicle_id)
            if ids_valid and _valid_issued_at(request.issued_at):
                return request
    return from_model(decode_request(data))


def from_model(message: RequestMessage) -> Request:
    """The `Request` of a request pydantic read (the rare path: what msgspec did not take)."""
    issued_at = msgspec.json.encode(message.issued_at).decode()[1:-1]
    return Request(
        message.request_id,
        message.connection_id,
        message.vehicle_id,
        message.kind,
        message.target,
        issued_at,
        message.params,
    )


def _valid_id(value: str) -> bool:
    if value in _valid_ids:
        return True
    try:
        _RESOURCE_ID(value)
    except ValueError:
        return False
    _remember(_valid_ids, value)
    return True


def _valid_issued_at(value: str) -> bool:
    if value in _valid_times:
        return True
    try:
        _ISSUED_AT(msgspec.json.encode(value))
    except ValueError:
        return False
    _remember(_valid_times, value)
    return True


def _remember(valid: set[str], value: str) -> None:
    if len(valid) >= REMEMBERED:
        valid.clear()
    valid.add(value)
