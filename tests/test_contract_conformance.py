"""The running gatekeeper against docs/contract.md and docs/contract/*.json, read as a client in another language would.

Every decision read here is validated against the checked-in decision schema with format checking; each rule of the
contract that a producer or consumer relies on (shard routing, strict JSON and dates, numbers, error codes, echoes,
duplicates, the consumer recipe) has a test that sends raw entries and reads the raw streams.
"""

from __future__ import annotations

import asyncio
import binascii
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from redis.asyncio import Redis
from typer.testing import CliRunner

from devtools.builders import request_body
from fleetgate import app
from services.gatekeeper.worker import Gatekeeper
from services.keyspace import Keys, shard_tag

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT / "docs" / "contract"
GUIDE = (ROOT / "docs" / "contract.md").read_text()
Runner = Callable[[], AbstractAsyncContextManager[Gatekeeper]]


def validator(message: str) -> Draft202012Validator:
    schema = json.loads((CONTRACT / f"{message}.v1.schema.json").read_text())
    return Draft202012Validator(schema, format_checker=FormatChecker())


DECISION = validator("decision")


def test_format_checking_is_real() -> None:
    """date-time is checked (jsonschema needs rfc3339-validator for it), so the validations below mean something."""
    assert "date-time" in FormatChecker().checkers
    assert not validator("request").is_valid({**body("r"), "issued_at": "2026-11-28T12:00Z"})


# --- shard routing: the contract's formula, in plain code ---------------------------------------------------------


def slot(key: str) -> int:
    """CRC16-XMODEM of the UTF-8 key modulo 16384 (no hash tags in these keys), as the contract says."""
    return binascii.crc_hqx(key.encode(), 0) % 16384


def contract_tag(shard: int, shards: int) -> str:
    k = 0
    while slot(f"s{shard}.{k}") * shards // 16384 != shard:
        k += 1
    return f"s{shard}.{k}"


def test_shard_tags_follow_the_contract_for_1_to_512_shards() -> None:
    """A producer computing stream names from the contract's text gets the names the system reads, for S = 1..512
    (every shard's streams up to 64 shards; beyond, a sample of shards, by the function the keyspace tags them with).
    """
    for shards in range(2, 65):
        keys = Keys("fleetgate", shards)
        for shard in range(shards):
            assert keys.shard(shard).requests == f"fleetgate:{{{contract_tag(shard, shards)}}}:requests", shards
    for shards in range(65, 513):
        for shard in sorted({0, 1, shards // 3, shards // 2, shards - 2, shards - 1}):
            assert shard_tag(shard, shards) == contract_tag(shard, shards), (shard, shards)
    assert Keys("fleetgate", 1).shard(0).requests == "fleetgate:requests"


def test_ids_route_as_the_contract_says() -> None:
    """The shard of an id is slot(id) * S // 16384, for every S; the worked example holds."""
    for shards in (2, 3, 6, 45, 60, 100, 512):
        keys = Keys("fleetgate", shards)
        for n in range(200):
            vehicle = f"veh-{n}"
            assert keys.shard_of_vehicle(vehicle).index == slot(vehicle) * shards // 16384
    assert '`slot("veh-1")` is 4502' in GUIDE
    assert slot("veh-1") == 4502
    assert "`fleetgate:{s3.3}:requests`" in GUIDE
    assert contract_tag(3, 6) == "s3.3"
    assert "the tag of shard 11 is `s11.30`" in GUIDE
    assert contract_tag(11, 60) == "s11.30"


def test_gatekeeper_shards_json_is_loadable_and_agrees() -> None:
    """`fleetgate gatekeeper shards --json` gives each shard's tag, slots and streams, as the formula computes them."""
    result = CliRunner().invoke(app, ["gatekeeper", "shards", "--count", "60", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["tag"] for row in rows] == [contract_tag(i, 60) for i in range(60)]
    for row in rows:
        low, high = row["vehicle_slots"]
        assert low * 60 // 16384 == row["shard"] == high * 60 // 16384
        assert (low - 1) * 60 // 16384 == row["shard"] - 1 or low == 0
        assert row["requests"] == f"fleetgate:{{{row['tag']}}}:requests"


# --- the running gatekeeper ------------------------------------------------------------------------------------------


def body(request_id: str, **fields: Any) -> dict[str, Any]:
    return request_body(request_id, **{"connection_id": "c-unknown", "vehicle_id": "bev", **fields})


class Wire:
    """Raw XADDs of payloads and raw reads of decisions, as a client with nothing but a Redis library."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def send(self, payload: str | bytes, *fields: bytes | str) -> str:
        command = ("XADD", self.keys.requests, "*", *fields, "data", payload)
        entry = await self.redis.execute_command(*command)  # type: ignore[no-untyped-call]
        return entry.decode() if isinstance(entry, bytes) else str(entry)

    async def decisions(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait for `count` decisions; each must validate against the decision schema."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            entries = await self.redis.xrange(self.keys.decisions) or []
            if len(entries) >= count or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.02)
        found = [json.loads((fields or {})[b"data"]) for _, fields in entries]
        for decision in found:
            errors = [error.message for error in DECISION.iter_errors(decision)]
            assert errors == [], (decision, errors)
        return found

    async def decided(self, *payloads: str | bytes) -> dict[str, dict[str, Any]]:
        """Send each payload; its decision, by request_id."""
        for payload in payloads:
            await self.send(payload)
        return {d["request_id"]: d for d in await self.decisions(len(payloads))}


@pytest.fixture
async def wire(redis: Redis, keys: Keys, running_later: Runner) -> AsyncIterator[Wire]:
    async with running_later():
        yield Wire(redis, keys)


def raw(request_id: str, extra: str = "", **fields: Any) -> str:
    """A request's JSON text with `extra` spliced in as the last member (for what json.dumps cannot write)."""
    text = json.dumps(body(request_id, **fields))
    return text[:-1] + (f", {extra}}}" if extra else "}")


async def test_non_json_numbers_are_rejected_anywhere(wire: Wire) -> None:
    """NaN and Infinity are not RFC 8259 JSON: REJECTED as invalid JSON, even in an ignored field; in a string they
    are text, and fine."""
    got = await wire.decided(
        raw("nan", '"extra": NaN'),
        raw("inf", '"extra": [1, Infinity]'),
        raw("neg-inf", '"nested": {"x": -Infinity}'),
        raw("text", '"note": "NaN and Infinity"'),
    )
    for request_id in ("nan", "inf", "neg-inf"):
        assert got[request_id]["outcome"] == "REJECTED"
        assert "not JSON numbers (RFC 8259)" in got[request_id]["error"]["description"]
    assert got["text"]["outcome"] == "UNAUTHORIZED"


ACCEPTED_TIMES = ["2026-11-28T12:00:00Z", "2026-11-28t12:00:00.5z", "2026-11-28T13:00:00+01:00", "2026-06-30T23:59:60Z"]
REFUSED_TIMES: list[Any] = [
    "1795926729",
    1795926729,
    "2026-11-28T12:00Z",
    "2026-11-28T12:00:00+0100",
    "2026-11-28T12:00:00",
    "2026-11-28 12:00:00Z",
    "2026-11-28",
]


async def test_issued_at_is_rfc3339_and_nothing_else(wire: Wire) -> None:
    """RFC 3339 date-times are accepted (lowercase t/z and a leap second too); epoch seconds, missing seconds or
    `+0100` are REJECTED with a description saying what was expected, as the request schema says."""
    times = ACCEPTED_TIMES + REFUSED_TIMES
    got = await wire.decided(*(json.dumps(body(f"t{n}", issued_at=value)) for n, value in enumerate(times)))
    schema = json.loads((CONTRACT / "request.v1.schema.json").read_text())
    by_pattern = Draft202012Validator(schema)  # the schema's own pattern, without a format checker's opinion
    for n, value in enumerate(times):
        decision, accepted = got[f"t{n}"], value in ACCEPTED_TIMES
        assert (decision["outcome"] != "REJECTED") is accepted, value
        assert by_pattern.is_valid(body("x", issued_at=value)) is accepted, value
        if not accepted:
            assert not validator("request").is_valid(body("x", issued_at=value)), value
            assert "expected an RFC 3339 date-time" in decision["error"]["description"]
    # Python's rfc3339-validator (jsonschema's date-time check) refuses lowercase t/z and leap seconds, which
    # RFC 3339 allows: the plain form passes every checker.
    assert validator("request").is_valid(body("x", issued_at=ACCEPTED_TIMES[0]))


async def test_unknown_fields_are_ignored_within_the_stated_limits(wire: Wire) -> None:
    """Flat or moderately nested unknown fields are ignored; a lone surrogate or nesting past 200 levels is REJECTED
    as invalid JSON with the request's own id echoed, as the contract says."""
    got = await wire.decided(
        raw("nested-150", f'"extra": {"[" * 150}{"]" * 150}'),
        raw("objects", '"extra": {"a": {"b": [1, 2.5, "x", null, true]}}'),
        raw("surrogate", '"extra": "\\ud800"'),
        raw("deep-300", f'"extra": {"[" * 300}{"]" * 300}'),
    )
    assert got["nested-150"]["outcome"] == got["objects"]["outcome"] == "UNAUTHORIZED"
    for request_id in ("surrogate", "deep-300"):
        assert got[request_id]["outcome"] == "REJECTED"
        assert got[request_id]["error"]["description"].startswith("Invalid request: Invalid JSON")
        assert got[request_id]["vehicle_id"] == "bev"


async def test_integral_numbers_count_as_integers(wire: Wire, connection_id: str) -> None:
    """JSON has one number type: 80.0 and 8e1 are the integer 80 for an integer parameter, and 1.0 for `v`; 80.5 is
    a bad parameter (PARAMETER)."""
    command = {"connection_id": connection_id, "kind": "command", "target": "set-charge-limit"}
    got = await wire.decided(
        raw("float", '"params": {"percent": 80.0}', **command),
        raw("exponent", '"params": {"percent": 8e1}', **command),
        raw("fraction", '"params": {"percent": 80.5}', **command),
        raw("v-float", v=1.0),
    )
    assert got["float"]["outcome"] == got["exponent"]["outcome"] == "PERMISSION_DENIED"  # control_charge ungranted
    assert (got["fraction"]["outcome"], got["fraction"]["error"]["code"]) == ("REJECTED", "PARAMETER")
    assert got["v-float"]["outcome"] == "UNAUTHORIZED"


async def test_error_codes_and_permission_follow_smartcar_split(wire: Wire, connection_id: str) -> None:
    """An unknown target is malformed (code null, permission null); a bad parameter is PARAMETER; a known target keeps
    its permission whatever else fails."""
    got = await wire.decided(
        raw("unknown", target="warp-drive", connection_id=connection_id),
        raw("signal-params", '"params": {"x": 1}', connection_id=connection_id),
        raw("bad-time", issued_at="yesterday"),
        raw("bad-vehicle", vehicle_id="not an id!", kind="command", target="lock"),
    )
    assert [got["unknown"][k] for k in ("outcome", "permission")] == ["REJECTED", None]
    assert got["unknown"]["error"]["code"] is None
    assert (got["signal-params"]["error"]["code"], got["signal-params"]["permission"]) == ("PARAMETER", "read_odometer")
    assert (got["bad-time"]["error"]["code"], got["bad-time"]["permission"]) == (None, "read_odometer")
    assert (got["bad-vehicle"]["permission"], got["bad-vehicle"]["target"]) == ("control_security", "lock")


async def test_an_oversized_payload_is_not_read(wire: Wire) -> None:
    """Over FLEETGATE_MAX_PAYLOAD_BYTES: decided under unreadable:<entry id>, nothing echoed, as the contract says."""
    entry = await wire.send(raw("big", f'"pad": "{"x" * 2000}"'))
    (decision,) = await wire.decisions(1)
    assert decision["request_id"] == f"unreadable:{entry}"
    assert [decision[k] for k in ("connection_id", "vehicle_id", "kind", "target", "permission")] == [None] * 5
    assert decision["error"]["code"] is None


async def test_a_reused_request_id_gets_exactly_one_decision(
    redis: Redis, keys: Keys, running_later: Runner, connection_id: str
) -> None:
    """Different requests under one id, their copies in batches decided concurrently: exactly one decision per id,
    for one of its copies (the contract: never reuse an id; which copy wins depends on timing)."""
    client = Wire(redis, keys)
    copies = ("odometer-traveleddistance", "tractionbattery-stateofcharge")
    for target in copies:  # the second copies a thousand entries after the first: other batches
        async with redis.pipeline(transaction=False) as pipe:
            for n in range(1000):
                pipe.xadd(keys.requests, {"data": raw(f"r{n}", connection_id=connection_id, target=target)})
            await pipe.execute()
    async with running_later():
        decisions = await client.decisions(1000)
        await asyncio.sleep(0.3)  # a second decision for an id would show now
        decisions = await client.decisions(1000)
    assert sorted(d["request_id"] for d in decisions) == sorted(f"r{n}" for n in range(1000))
    assert {d["target"] for d in decisions} <= set(copies)


async def test_the_last_of_two_data_fields_counts(wire: Wire) -> None:
    """An entry repeating `data` is read by its last one, as the contract says."""
    await wire.send(json.dumps(body("last")), "data", "not json")
    (decision,) = await wire.decisions(1)
    assert (decision["request_id"], decision["outcome"]) == ("last", "UNAUTHORIZED")


def test_output_schemas_require_every_field() -> None:
    """Every field of every output message is always present, so each schema requires all its properties."""
    for message in ("decision", "connection-event", "deadletter"):
        schema = json.loads((CONTRACT / f"{message}.v1.schema.json").read_text())
        assert set(schema["required"]) == set(schema["properties"]), message
    request = json.loads((CONTRACT / "request.v1.schema.json").read_text())
    assert set(request["properties"]) - set(request["required"]) == {"v", "params"}


# --- the AsyncAPI document -------------------------------------------------------------------------------------------


ASYNCAPI = json.loads((CONTRACT / "asyncapi.json").read_text())


def resolve(reference: str) -> Any:
    node: Any = ASYNCAPI
    for part in reference.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_asyncapi_says_who_sends_and_who_receives() -> None:
    """The gatekeeper receives requests (as the group `gatekeeper`) and connection events, and sends decisions and
    dead letters; the vehicles service sends responses; each operation names its channel's own message."""
    actions = {resolve(op["channel"]["$ref"])["title"]: op["action"] for op in ASYNCAPI["operations"].values()}
    assert actions == {
        "requests": "receive",
        "connection-events": "receive",
        "decisions": "send",
        "deadletter": "send",
        "responses": "send",
    }
    (receive_requests,) = (o for o in ASYNCAPI["operations"].values() if o["channel"]["$ref"] == "#/channels/requests")
    assert receive_requests["x-consumer-group"] == "gatekeeper"
    for operation in ASYNCAPI["operations"].values():
        (message,) = operation["messages"]
        assert message["$ref"].startswith(operation["channel"]["$ref"] + "/messages/")
        resolve(message["$ref"])


def test_asyncapi_messages_are_distinct_and_claim_no_header() -> None:
    """Five messages with five ids, none declaring a correlationId header (entries have none), no custom bindings,
    and every reference resolves inside the document."""
    messages = ASYNCAPI["components"]["messages"]
    assert sorted(messages) == ["connection-event", "deadletter", "decision", "request", "response"]
    text = json.dumps(ASYNCAPI)
    assert "correlationId" not in text
    assert "bindings" not in text
    references: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            references.extend(v for k, v in node.items() if k == "$ref")
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(ASYNCAPI)
    assert references
    for reference in references:
        resolve(reference)
