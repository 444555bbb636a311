"""docs/reliability.md, written from the figures `python -m bench.reliability` measured."""

from __future__ import annotations

from typing import Any


def _row(name: str, o: dict[str, Any]) -> str:
    return (
        f"| {name} | {o['requests']:,} | {o['decided']:,} | {o['lost']:,} | {o['duplicated']:,} | {o['pending']} "
        f"| {o['dead_letters']} |"
    )


def render(results: dict[str, Any]) -> str:
    kills = results["worker kills"]
    crash = results["redis crash"]
    revocation = results["revocation"]
    suite = results["suite"]
    passed = sum(1 for status in suite["tests"].values() if status == "passed")
    tests = "\n".join(f"| `{name}` | {status} |" for name, status in sorted(suite["tests"].items()))
    crash_rows = "\n".join(_row(f"Redis kill -9, {mode}", outcome) for mode, outcome in crash.items())
    return f"""# Reliability

What fleetgate promises downstream (exactly one decision per request, nothing lost, nobody let through who should
not be) and the evidence. Every figure below was measured by one command, which also runs the suite and rewrote
this file:

```bash
.venv/bin/python -m bench.reliability        # ~3 minutes; figures also in bench/results/reliability.json
```

Last run: {results["machine"]["date"]}, Python {results["machine"]["python"]}, a 2-core VM shared with everything
else; Redis 7.0 on loopback. The reliability tests themselves run in CI with the rest of the suite
(`pytest -m reliability` selects them, `-m "not reliability"` skips them): {passed} of {len(suite["tests"])} passed
in {suite["seconds"]:.0f} s in this run.

## Crashes and restarts

| scenario | requests | decided | lost | duplicated | pending after | dead letters |
|---|---:|---:|---:|---:|---:|---:|
{_row(f"{kills['disruptions']} x kill -9 of a worker (2 workers, each restarted)", kills)}
{crash_rows}

- **Worker kills** (`tests/reliability/test_crash.py`): two `fleetgate gatekeeper run` processes share the group
  while 50,000 requests arrive at about 5k/s; five times, at seeded moments, one is killed with SIGKILL and a new
  one started. What the dead worker had read stays pending; the survivors reclaim it after `FLEETGATE_MIN_IDLE_MS`
  (1 s here) and the decide script's dedupe record makes a second decision of the same request impossible.
- **Redis kill -9** (`tests/reliability/test_redis_restart.py`; the rows above for each persistence setting): two
  workers, 20,000 requests, Redis killed with SIGKILL when about a tenth are decided and most are in flight, then
  started again on the same port and directory. Workers, producers and the consumer reconnect with backoff.
  Decisions are counted as a live downstream consumer (XREAD) sees them.
  - **AOF `always`**: nothing lost, nothing duplicated: every acknowledged write (a request, a decision with its
    dedupe record and acknowledgement, which one script writes together) was on disk before Redis answered.
  - **AOF `everysec`**: nothing lost or duplicated here either, because killing the Redis *process* leaves
    what it already wrote to the AOF in the kernel's page cache. The one-second window of `everysec` is for a
    machine crash or power loss, which this test cannot cause: then up to a second of writes vanish. Requests
    published in it are lost unless their producer retries; decisions published in it vanish together with their
    dedupe record and acknowledgement, so the request is delivered and decided again, and a consumer that had
    read the first decision sees a second one (same `request_id`, new `decision_id`). Consumers that need
    exactly-once effects across such crashes dedupe on `request_id`.
  - **No persistence**: a restart loses every stream, group, dedupe record and the registry. Whatever was in
    flight is lost; the workers create their group again (they do not stop) and decide what arrives next.
- Without a crash, a Redis restart with a clean shutdown (SIGTERM) persists everything with AOF in either mode.

## Revocation bound

Under about 2,000 other requests a second, `{revocation["trials"]}` connections were each revoked
(`ConnectService.revoke`, what `fleetgate connect revoke` calls) and probed every 5 ms until a decision came back
UNAUTHORIZED: p50 **{revocation["p50 ms"]:.0f} ms**, p99 **{revocation["p99 ms"]:.0f} ms**, max
{revocation["max ms"]:.0f} ms. The tests (`tests/reliability/test_revocation_bound.py`, the 64-shard ones) assert only
that each revocation is honoured; this figure is the bound. Each worker follows the connection-events
stream with a blocking read and drops the cached connection on its event; the cache's TTL
(`FLEETGATE_CACHE_TTL_S`) is only a safety net.

## Fail closed, poison, fuzz, trimming, security

- **Fail closed** (`tests/reliability/test_fail_closed.py`): requests that carry their own scopes (ignored),
  name another vehicle's connection, or a revoked or unknown one are never ALLOWED; while the registry cannot be
  read, entries wait and are decided once it can, never on missing data (and never dead-lettered: below).
- **Poison** (`tests/reliability/test_trimming_and_poison.py`): entries whose processing always fails go to the
  dead-letter stream after `FLEETGATE_MAX_DELIVERIES` with their fields and the last error, while the healthy
  traffic around them is decided.
- **Fuzz** (`tests/reliability/test_fuzz.py`): 100,000 entries through one worker process, generated (seeded)
  and hand-written bad payloads (truncated and invalid
  JSON, wrong types, deep nesting, huge strings, invalid UTF-8, binary, a 10 MB value, missing and extra fields,
  unknown `v`) each get a REJECTED decision or a dead-letter entry; the worker stays up with bounded memory (the
  test asserts it; `pytest -s tests/reliability/test_fuzz.py` prints its figures: on 2026-11-29 one decision for
  each of the 100,000, 0 dead letters, worker RSS 69 MiB at 20 % and 70 MiB at the end). The
  scope parser, the config loader and the CLI answer errors, never tracebacks.
- **Trimming** (same file as poison): with a slow downstream group on the requests stream, the stream is trimmed
  only below what every group acknowledged: the slow group still receives every entry, and the stream empties
  once everyone has caught up.
- **Redis security** (`tests/reliability/test_redis_security.py`): an ACL user with a password and TLS
  (`rediss://`); the password never appears in logs, errors or metrics.

## A consumer that stops, a registry that fails (issue 14, items 1 and 3)

An audit consumer (`Auditor`, what `fleetgate audit run` runs) stopped while requests are decided, with
`FLEETGATE_DECISIONS_MAXLEN` 5,000 (the issue's report: 25,000 of 30,200 lost, silently), then run again:

| hard cap | sent while stopped | held | stored after | lost | gatekeeper counted | audit reported | catch-up |
|---:|---:|---:|---:|---:|---:|---:|---:|
{_lag_rows(results.get("lagging consumer", []))}

Under the retention nothing the group had not acknowledged is trimmed; past the hard cap the gatekeeper's
`fleetgate_trimmed_unread_total{{stream="decisions",group="audit"}}`, its error log and the audit's `missed` (and
its exit 1) give the same number (`tests/reliability/test_lagging_consumer.py` asserts it, with `tail --group`).

Registry reads refused (an ACL without the registry's keys: NOPERM) for {_outage(results, "outage s")} s while
{_outage(results, "requests")} valid requests arrive, with a redelivery budget of about 5 x 1 s
(`FLEETGATE_MIN_IDLE_MS` 1000, `FLEETGATE_MAX_DELIVERIES` 5; the issue's report: 1,269 of 2,000 dead-lettered):
{_outage(results, "decided")} decided, {_outage(results, "duplicated")} duplicated,
{_outage(results, "dead letters")} dead letters, all decided {_outage(results, "recovered s")} s after the registry
came back; the health check during the outage: {_outage(results, "health check during the outage")}
(`tests/reliability/test_registry_outage.py`).

## Operator edges

`tests/reliability/test_operator_edges.py` and `test_blackhole.py`; each of these failed before it was fixed (issue 14,
items 2, 4 and 6):

| situation | what the operator now sees |
|---|---|
{_edge_rows()}

## The tests in the last run

| test | result |
|---|---|
{tests}
"""


OPERATOR_EDGES = (
    (
        "Redis with `maxmemory-policy allkeys-lru` (evicted dedupe records decided requests twice; evicted "
        "connections made valid requests UNAUTHORIZED)",
        "every command and worker refuses to start: one line naming the policy and the fix, exit 2; `gatekeeper "
        "check` unhealthy; `FLEETGATE_ALLOW_EVICTION=true` runs anyway and the check says the policy was allowed",
    ),
    (
        "Redis out of memory under `noeviction`",
        'each failed commit counted as `fleetgate_batch_errors_total{reason="OOM"}`; entries stay pending, '
        "nothing is decided until memory is freed",
    ),
    ("`FLEETGATE_REDIS_URL=localhost:6390` (no scheme; was a 68-line traceback)", "one line, exit 2"),
    (
        "SIGTERM while Redis is down (was exit 1 with three tracebacks)",
        "exit 0, one warning: the heartbeat expires on its own",
    ),
    (
        "`FLEETGATE_BLOCK_MS=6000` (spurious socket timeouts)",
        "no timeout logged: a connection's socket timeout is FLEETGATE_SOCKET_TIMEOUT_S (10 s) on top of its block "
        "time, with TCP keepalive and a connect timeout of at most 5 s",
    ),
    (
        "a network that drops packets without closing anything (`test_blackhole.py`: a proxy in the test stops "
        "forwarding for 4 s)",
        "with a 1 s socket timeout the worker logged the dead connection within 2.5 s, retried with backoff, and "
        "decided all 50 requests sent meanwhile, once each, when the network came back; `gatekeeper check` fails "
        "within 10 s (3 s per attempt) instead of hanging",
    ),
    ("`fleetgate audit run`", "logs with time, level and logger, JSON lines with `FLEETGATE_LOG_JSON`"),
)


def _lag_rows(runs: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"| {r['hard cap'] or 'none'} | {r['requests']:,} | {r['held while stopped']:,} | {r['stored']:,} "
        f"| {r['lost']:,} | {r['counted by the gatekeeper']:,} | {r['reported by the audit']:,} | {r['catch-up s']} s |"
        for r in runs
    )


def _outage(results: dict[str, Any], name: str) -> Any:
    value = results.get("registry outage", {}).get(name, "?")
    return f"{value:,}" if isinstance(value, int) else value


def _edge_rows() -> str:
    return "\n".join(f"| {situation} | {seen} |" for situation, seen in OPERATOR_EDGES)
