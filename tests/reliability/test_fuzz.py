"""Fuzzing: 100,000 hostile entries through a real gatekeeper process (the parsers: test_fuzz_parsers.py).

The process test's oracle for each entry is what the intake and the pure `decide()` say about it (both are
tested on their own elsewhere): what it checks is the worker around them, that every entry comes out as exactly
one decision with that outcome, whatever the bytes, and that the process survives with bounded memory.
"""

from __future__ import annotations

import asyncio
import json
import random
import string
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from devtools.builders import make_vehicle
from devtools.workers import fleetgate_env, start_worker_process
from schemas.catalog import get_catalog
from schemas.connection import Connection
from schemas.decision import decide
from schemas.outbound import Rejection
from schemas.powertrain import Powertrain
from schemas.vehicle import Vehicle
from services.gatekeeper.intake import read_entry
from services.keyspace import Keys
from services.local_redis import RedisServer
from services.registry import ConnectService, Registry
from services.streams import live_consumers
from tests.reliability.conftest import delete_prefix, read_stream, rss_mib, stop_process, valid_json, wait_until

pytestmark = [pytest.mark.reliability]

CATALOG = get_catalog()
SIGNALS = [s.code for s in CATALOG.signals]
COMMANDS = list(CATALOG.commands)
PERMISSIONS = list(CATALOG.permission_names)
FIELDS = ["v", "request_id", "connection_id", "vehicle_id", "kind", "target", "issued_at", "params"]
PAYLOADS = 100_000
MAX_PAYLOAD = 65_536  # the product default, which the worker runs with
SEED = 20261129
Fields = dict[bytes, bytes]
Expected = tuple[str | None, str]  # (request id, None when unreadable; outcome)

# Values of the wrong type or shape for some field; a readable string given as request_id is made unique.
ODD_VALUES: list[Any] = [
    None, True, False, 0, -1, 1.5, -0.0, 1e308, 10**40, "", " ", "\x00", "a\x00b", "\u00fc", "\U0001f697",
    "\ud800", "x\udfff", "\u202e\u200b", "x" * 129, "y" * 10_000, [], [1, "a"], {}, {"a": {"b": []}}, [[[[]]]],
    "2026-13-45T99:99:99Z", "2026-11-28T12:00:00", "2026-11-28T12:00:00+02:00", "1764331200", "SIGNAL", "command",
    "read_odometer", "../../etc/passwd", "*", "fleetgate:conn:*", "$(reboot)", "' OR 1=1 --", "NaN", "{}",
]  # fmt: skip


class Registered:
    """The registry the fuzz runs against: a BEV and an ICE car, a live, a narrow and a revoked connection."""

    def __init__(self, connections: dict[str, Connection], vehicles: dict[str, Vehicle]) -> None:
        self.connections = connections
        self.vehicles = vehicles
        ids = [*connections, "c-unknown", "C-" + next(iter(connections))[2:].upper()]
        # Pairs of (connection, vehicle): mostly the right vehicle, sometimes another's or an unknown one.
        self.pairs = [(c, conn.vehicle_id) for c, conn in connections.items()] * 4
        self.pairs += [(c, v) for c in ids for v in [*vehicles, "v-unknown"]]

    def expected(self, fields: Fields) -> Expected:
        """What the worker must decide for an entry (request id None when it is `unreadable:<entry id>`)."""
        intake = read_entry(b"0-0", fields, MAX_PAYLOAD)
        if isinstance(intake, Rejection):
            readable = None if intake.request_id.startswith("unreadable:") else intake.request_id
            return readable, "REJECTED"
        connection = self.connections.get(intake.connection_id)
        outcome = decide(intake, connection, self.vehicles.get(intake.vehicle_id)).outcome
        return intake.request_id, str(outcome)


async def register(registry: Registry, connect_service: ConnectService) -> Registered:
    await registry.add_vehicle(make_vehicle(Powertrain.BEV, vehicle_id="fz-bev"))
    await registry.add_vehicle(make_vehicle(Powertrain.ICE, vehicle_id="fz-ice"))
    wide = await connect_service.authorize("fz-bev", scope=" ".join(PERMISSIONS[::2]))
    narrow = await connect_service.authorize("fz-ice", scope="read_odometer required:read_fuel control_security")
    revoked = await connect_service.authorize("fz-bev", scope=" ".join(PERMISSIONS))
    await connect_service.revoke(revoked.id)
    connections = {c.id: await registry.connection(c.id) for c in (wide, narrow, revoked)}
    vehicles = {v: await registry.vehicle(v) for v in ("fz-bev", "fz-ice")}
    return Registered(connections, vehicles)


class Fuzzer:
    """Entries for the requests stream: valid requests, field and byte mutations of them, and junk."""

    def __init__(self, rng: random.Random, registered: Registered) -> None:
        self.rng = rng
        self.registered = registered

    def valid(self, n: int) -> dict[str, Any]:
        rng = self.rng
        connection_id, vehicle_id = rng.choice(self.registered.pairs)
        body: dict[str, Any] = {"v": 1, "request_id": f"fz-{n}", "connection_id": connection_id}
        body |= {
            "vehicle_id": vehicle_id,
            "issued_at": rng.choice(["2026-11-28T12:00:00Z", "2026-11-28T13:00:00+01:00"]),
        }
        if rng.random() < 0.7:
            body |= {"kind": "signal", "target": rng.choice(SIGNALS)}
            if rng.random() < 0.05:
                body["params"] = {"x": 1}
        else:
            command = rng.choice(COMMANDS)
            body |= {"kind": "command", "target": command.name}
            if command.params or rng.random() < 0.1:
                body["params"] = command.example_params if rng.random() < 0.7 else self.params()
        if rng.random() < 0.2:  # scopes of its own: must be ignored
            body[rng.choice(["scopes", "scope", "permissions", "granted"])] = rng.choice(
                [" ".join(PERMISSIONS), PERMISSIONS, {"all": True}, "required:control_security"]
            )
        if rng.random() < 0.1:
            del body["v"]  # optional: defaults to 1
        return body

    def params(self) -> dict[str, Any]:
        return {self.text(8): self.rng.choice(ODD_VALUES) for _ in range(self.rng.randint(0, 3))}

    def text(self, most: int) -> str:
        alphabet = string.printable + "\u00e9\u4e2d\U0001f600\x00\x7f"
        return "".join(self.rng.choice(alphabet) for _ in range(self.rng.randint(0, most)))

    def json_value(self, depth: int) -> Any:
        rng = self.rng
        pick = rng.random()
        if depth <= 0 or pick < 0.5:
            return rng.choice([*ODD_VALUES[:16], self.text(20), rng.randint(-(10**20), 10**20)])
        if pick < 0.75:
            return [self.json_value(depth - 1) for _ in range(rng.randint(0, 4))]
        return {self.text(6): self.json_value(depth - 1) for _ in range(rng.randint(0, 4))}

    def mutate_fields(self, body: dict[str, Any], n: int) -> dict[str, Any]:
        rng = self.rng
        for _ in range(rng.randint(1, 3)):
            field = rng.choice(FIELDS)
            pick = rng.random()
            if pick < 0.25:
                body.pop(field, None)
            elif pick < 0.85:
                value: Any = rng.choice(ODD_VALUES)
                if field == "request_id" and isinstance(value, str):
                    value = f"{value}-{n}"  # readable ids must stay unique, or dedupe would hide an entry
                body[field] = value
            else:
                body[field] = self.json_value(3)
        return body

    def mangle(self, data: bytes) -> bytes:
        rng = self.rng
        cut = rng.randrange(len(data))
        pick = rng.random()
        if pick < 0.3:
            return data[:cut]
        if pick < 0.5:
            return data[:cut] + bytes([data[cut] ^ (1 << rng.randrange(8))]) + data[cut + 1 :]
        if pick < 0.7:
            return data[:cut] + rng.choice([b"\x00", b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\\", b'"']) + data[cut:]
        if pick < 0.85:
            return data[:cut] + rng.randbytes(rng.randint(1, 16)) + data[cut:]
        return data + rng.choice([b"}", b"{}", b" \x00", b",", b"]"])

    def junk(self) -> bytes:
        rng = self.rng
        pick = rng.random()
        if pick < 0.4:
            return rng.randbytes(rng.randint(0, 400))
        if pick < 0.8:
            return json.dumps(self.json_value(4)).encode()
        return self.text(200).encode("utf-8", "surrogatepass")

    def entry(self, n: int) -> Fields:
        rng = self.rng
        body = self.valid(n)
        pick = rng.random()
        if pick < 0.3:
            data = json.dumps(body, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
        elif pick < 0.65:
            body = self.mutate_fields(body, n)
            data = json.dumps(body, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
        elif pick < 0.85:
            data = self.mangle(json.dumps(body).encode())
        else:
            data = self.junk()
        if rng.random() < 0.05:  # the envelope: extra fields beside `data`, or none called `data`
            extra = rng.choice([b"trace", b"DATA", b"\xff\xfe", b"data2", b""])
            return {extra: data} if rng.random() < 0.4 else {b"data": data, extra: rng.randbytes(8)}
        return {b"data": data}


def corpus() -> list[Fields]:
    """Hand-written nasty entries: each id `nasty-<i>`, so none is deduplicated against another."""
    good = json.loads(valid_json("x"))
    entries: list[bytes | Fields] = [
        b"",
        b" \n\t",
        b"{",
        b'{"request_id": "nasty-trunc", "kind": "sig',
        b"[" * 100_000 + b"]" * 100_000,  # 200 KB: above the payload limit, refused unread
        b"[" * 30_000 + b"]" * 30_000,  # 60 KB: read, too deep for either JSON parser
        b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
        b'{"request_id": "nasty-deep", "params": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        b"x" * (10 * 1024 * 1024),  # 10 MB
        json.dumps({**good, "target": "t" * 60_000}).encode(),
        b"\xff\xfe\x00\x01" * 64,
        bytes(range(256)) * 4,
        b"\xef\xbb\xbf" + valid_json("nasty-bom"),
        b"\x00" * 100,
        valid_json("nasty-nul").replace(b'"signal"', b'"sig\x00nal"'),
        valid_json("nasty-nul2").replace(b'"veh-1"', b'"veh-1\\u0000"'),
        valid_json("nasty-overlong").replace(b'"veh-1"', b'"veh\xc0\xae1"'),
        valid_json("nasty-cesu").replace(b'"veh-1"', b'"veh\xed\xa0\x80"'),
        b'{"request_id": "\\ud800", "kind": 1}',  # a lone surrogate Python's JSON decoder accepts
        b'{"request_id": "ok-\\udfff-id", "connection_id": "\\udc80", "kind": []}',
        b"[]",
        b"[1, 2]",
        b"123",
        b"-1e999",
        b"null",
        b"true",
        b'"a string"',
        b"NaN",
        valid_json("nasty-trailing") + b"garbage",
        valid_json("nasty-twice") + valid_json("nasty-twice-b"),
        json.dumps({**good, "request_id": "r" * 10_000}).encode(),
        json.dumps({**good, "request_id": ""}).encode(),
        json.dumps({**good, "request_id": "nasty-v2", "v": 2}).encode(),
        json.dumps({**good, "request_id": "nasty-v-str", "v": "1"}).encode(),
        json.dumps({**good, "request_id": "nasty-v-null", "v": None}).encode(),
        json.dumps({**good, "request_id": "nasty-issued-num", "issued_at": 1764331200}).encode(),
        json.dumps({**good, "request_id": "nasty-naive", "issued_at": "2026-11-28T12:00:00"}).encode(),
        json.dumps({**good, "request_id": "nasty-big-int", "params": {"n": 10**400}}).encode(),
        b'{"request_id": "nasty-dup-key", "request_id": "nasty-dup-key-2", "kind": 5}',
        json.dumps({**good, "request_id": "nasty-extra", "extra": {"deep": [1, 2, {"x": None}]}}).encode(),
        {b"other": valid_json("nasty-no-data")},
        {b"data": valid_json("nasty-beside"), b"trace-id": b"abc", b"\xff": b"\x00"},
        {b"DATA": valid_json("nasty-upper")},
        {b"data": b"", b"data2": valid_json("nasty-data2")},
    ]
    wrong_values: tuple[Any, ...] = (None, 7, [], {"k": "v"}, True, "")
    for i, field in enumerate(FIELDS):
        missing = {k: v for k, v in good.items() if k != field}
        entries.append(json.dumps(missing | ({} if field == "request_id" else {"request_id": f"nasty-m{i}"})).encode())
        for j, value in enumerate(wrong_values):
            wrong = {**good, field: value} | ({} if field == "request_id" else {"request_id": f"nasty-w{i}-{j}"})
            entries.append(json.dumps(wrong).encode())
    return [entry if isinstance(entry, dict) else {b"data": entry} for entry in entries]


def generate(registered: Registered) -> tuple[list[Fields], list[Expected]]:
    """PAYLOADS entries, the corpus spread evenly through the generated ones, with what each must get."""
    fuzzer = Fuzzer(random.Random(SEED), registered)
    nasty = corpus()
    every = PAYLOADS // len(nasty)
    entries: list[Fields] = []
    expected: list[Expected] = []
    seen: set[str] = set()
    n = 0
    while len(entries) < PAYLOADS:
        index = len(entries)
        hand_written = index % every == 0 and index // every < len(nasty)
        if hand_written:
            fields = nasty[index // every]
        else:
            n += 1
            fields = fuzzer.entry(n)
        outcome = registered.expected(fields)
        if outcome[0] is not None:
            if outcome[0] in seen:  # a mutation that reproduced another entry's id: exactly-once would hide it
                assert not hand_written, f"two hand-written entries share request id {outcome[0]!r}"
                continue
            seen.add(outcome[0])
        entries.append(fields)
        expected.append(outcome)
    return entries, expected


async def publish(redis: Redis, keys: Keys, entries: list[Fields]) -> list[str]:
    """XADD the entries in pipelines of 1000; their entry ids, in order."""
    ids: list[str] = []
    for start in range(0, len(entries), 1000):
        async with redis.pipeline(transaction=False) as pipe:
            for fields in entries[start : start + 1000]:
                pipe.xadd(keys.requests, fields)  # type: ignore[arg-type]  # bytes field names are fine
            ids += [entry_id.decode() for entry_id in await pipe.execute()]
    return ids


@pytest.mark.timeout(240)
async def test_100k_fuzzed_entries_each_get_their_decision(
    redis: Redis,
    keys: Keys,
    redis_server: RedisServer,
    registry: Registry,
    connect_service: ConnectService,
    tmp_path: Path,
) -> None:
    """100,000 hostile entries: each decided once as its oracle says; the worker survives with bounded RSS."""
    registered = await register(registry, connect_service)
    started = time.monotonic()
    entries, expected = generate(registered)
    generated_s = time.monotonic() - started
    stderr = tmp_path / "worker.stderr"
    timings = {"min_idle_ms": "2000", "reclaim_interval_ms": "500", "max_deliveries": "2"}
    worker = start_worker_process(fleetgate_env(redis_server.url, keys.prefix, block_ms=100, **timings), stderr)
    try:
        assert await wait_until(lambda: has_heartbeat(redis, keys), timeout=20), stderr.read_text()
        fifth = PAYLOADS // 5
        ids = await publish(redis, keys, entries[:fifth])
        assert await wait_until(lambda: accounted(redis, keys, fifth), timeout=60), stderr.read_text()[-2000:]
        rss_at_20 = rss_mib(worker.pid)
        ids += await publish(redis, keys, entries[fifth:])
        assert await wait_until(lambda: accounted(redis, keys, PAYLOADS), timeout=120), stderr.read_text()[-2000:]
        await asyncio.sleep(1.0)  # a late or duplicate decision would show up now
        rss_at_100 = rss_mib(worker.pid)
        assert worker.poll() is None, "the worker died"
        (group,) = await redis.xinfo_groups(keys.requests)
        decisions = await read_stream(redis, keys.decisions)
        letters = await read_stream(redis, keys.deadletter)
    finally:
        exit_code = await asyncio.to_thread(stop_process, worker)
    total_s = time.monotonic() - started
    await delete_prefix(redis, keys.prefix)
    assert exit_code == 0
    assert (group["pending"], group["lag"]) == (0, 0)

    outcomes = check_accounts(ids, expected, [d for _, d in decisions], [letter for _, letter in letters])
    assert outcomes["ALLOWED"] > 1000  # the fuzz reached the policy too
    assert outcomes["PERMISSION_DENIED"] > 1000
    assert rss_at_20 < 400
    assert rss_at_100 < 400
    assert rss_at_100 < 1.5 * rss_at_20
    assert "Traceback" not in stderr.read_text()
    report = {
        "payloads": PAYLOADS,
        "corpus": len(corpus()),
        "outcomes": dict(outcomes),
        "dead_lettered": len(letters),
        "rss_mib_at_20": round(rss_at_20, 1),
        "rss_mib_at_100": round(rss_at_100, 1),
        "generate_s": round(generated_s, 1),
        "total_s": round(total_s, 1),
    }
    print("FUZZ", json.dumps(report))


def check_accounts(
    ids: list[str], expected: list[Expected], decisions: list[dict[str, Any]], letters: list[dict[str, Any]]
) -> Counter[str]:
    """Assert each entry got exactly one decision, the one expected, or a dead letter; count the outcomes."""
    decided = {d["entry_id"]: d for d in decisions}
    assert len(decided) == len(decisions)  # no entry decided twice
    lettered = {letter["entry_id"] for letter in letters}
    assert decided.keys() | lettered == set(ids)  # every entry accounted for ...
    assert not decided.keys() & lettered  # ... once
    assert not letters, f"dead-lettered instead of decided: {[letter['reason'] for letter in letters][:5]}"
    wrong = []
    for entry_id, (request_id, outcome) in zip(ids, expected, strict=True):
        decision = decided[entry_id]
        if (decision["request_id"], decision["outcome"]) != (request_id or f"unreadable:{entry_id}", outcome):
            wrong.append((entry_id, request_id, outcome, decision["request_id"], decision["outcome"]))
    assert not wrong, f"{len(wrong)} entries decided otherwise, e.g. {wrong[:5]}"
    rejected = [d for d in decisions if d["outcome"] == "REJECTED"]
    assert all(d["error"]["type"] == "VALIDATION" and d["error"]["statusCode"] == 400 for d in rejected)
    return Counter(d["outcome"] for d in decisions)


async def has_heartbeat(redis: Redis, keys: Keys) -> bool:
    return bool(await live_consumers(redis, keys))


async def accounted(redis: Redis, keys: Keys, count: int) -> bool:
    return int(await redis.xlen(keys.decisions)) + int(await redis.xlen(keys.deadletter)) >= count


# --- the fast tier: no Redis
