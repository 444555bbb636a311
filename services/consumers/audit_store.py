"""The audit log's SQLite file: one row per decision and per connection event, written in one transaction per batch.

Rows are keyed by what makes them unique (a decision's `decision_id`, an event's stream entry id with its shard)
and written with INSERT OR IGNORE, so storing a batch twice (a crash between commit and XACK, then a re-read)
changes nothing.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from schemas.messages import ConnectionEventMessage, DecisionMessage
from schemas.scope import render_scope
from services.errors import AuditStoreError
from services.streams import hash_tag, split_id

DenialGrouping = Literal["permission", "outcome"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    connection_id TEXT,
    vehicle_id TEXT,
    kind TEXT,
    target TEXT,
    outcome TEXT NOT NULL,
    permission TEXT,
    error_type TEXT,
    error_code TEXT,
    decided_at TEXT NOT NULL,            -- UTC with microseconds, so that it sorts as text
    entry_ms INTEGER NOT NULL,           -- its entry id on the decisions stream, (ms, seq): a tie-breaker
    entry_seq INTEGER NOT NULL,
    data TEXT NOT NULL                   -- the entry's JSON as received
);
CREATE INDEX IF NOT EXISTS decisions_by_vehicle ON decisions (vehicle_id, decided_at, entry_ms, entry_seq);
CREATE INDEX IF NOT EXISTS denials ON decisions (permission, outcome) WHERE outcome <> 'ALLOWED';

CREATE TABLE IF NOT EXISTS connection_events (
    shard_tag TEXT NOT NULL,             -- the hash tag of its shard's stream ('' unsharded): entry ids are unique
    entry_id TEXT NOT NULL,              -- per stream only (and event ids are not promised unique at all)
    entry_ms INTEGER NOT NULL,
    entry_seq INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    vehicle_id TEXT NOT NULL,
    permissions TEXT NOT NULL,           -- as a scope parameter spells them: `required:` marks required ones
    config_version INTEGER,
    scope TEXT,
    occurred_at TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (shard_tag, entry_id)
);
CREATE INDEX IF NOT EXISTS events_by_connection ON connection_events (connection_id, entry_ms, entry_seq);

CREATE TABLE IF NOT EXISTS unreadable (
    stream TEXT NOT NULL,
    entry_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    fields TEXT NOT NULL,                -- the entry's fields as a JSON object (bytes decoded leniently)
    PRIMARY KEY (stream, entry_id)
);
"""


# The order of the values in Batch's rows.
_DECISION_COLUMNS = (
    "decision_id",
    "request_id",
    "connection_id",
    "vehicle_id",
    "kind",
    "target",
    "outcome",
    "permission",
    "error_type",
    "error_code",
    "decided_at",
    "entry_ms",
    "entry_seq",
    "data",
)
_EVENT_COLUMNS = (
    "shard_tag",
    "entry_id",
    "entry_ms",
    "entry_seq",
    "event_id",
    "type",
    "connection_id",
    "vehicle_id",
    "permissions",
    "config_version",
    "scope",
    "occurred_at",
    "data",
)
_UNREADABLE_COLUMNS = ("stream", "entry_id", "reason", "fields")

# A file written before shards keyed connection events by entry id alone; they all came from the unsharded
# stream, whose tag is "". Its table is renamed and its rows copied into the new one once that exists (_SCHEMA).
_UNSHARDED_EVENTS = "connection_events_unsharded"
_SET_ASIDE_UNSHARDED_EVENTS = f"""
ALTER TABLE connection_events RENAME TO {_UNSHARDED_EVENTS};
DROP INDEX events_by_connection;
"""
_COPY_UNSHARDED_EVENTS = f"""
INSERT INTO connection_events ({", ".join(_EVENT_COLUMNS)})
SELECT '', {", ".join(_EVENT_COLUMNS[1:])} FROM {_UNSHARDED_EVENTS};
DROP TABLE {_UNSHARDED_EVENTS};
"""


@dataclass
class Batch:
    """What one read brought, as rows: written together, in one transaction."""

    decisions: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    unreadable: list[tuple[str, str, str, str]] = field(default_factory=list)

    def add_decision(self, entry_id: str, decision: DecisionMessage, data: str) -> None:
        error = decision.error
        self.decisions.append(
            (
                decision.decision_id,
                decision.request_id,
                decision.connection_id,
                decision.vehicle_id,
                decision.kind,
                decision.target,
                decision.outcome.value,
                decision.permission,
                error.type if error else None,
                error.code if error else None,
                _utc(decision.decided_at),
                *split_id(entry_id),
                data,
            )
        )

    def add_event(self, stream: str, entry_id: str, event: ConnectionEventMessage, data: str) -> None:
        self.events.append(
            (
                hash_tag(stream),
                entry_id,
                *split_id(entry_id),
                event.event_id,
                event.type.value,
                event.connection_id,
                event.vehicle_id,
                render_scope(event.permissions),
                event.config_version,
                event.scope,
                _utc(event.occurred_at),
                data,
            )
        )

    def add_unreadable(self, stream: str, entry_id: str, reason: str, fields: dict[bytes, bytes]) -> None:
        text = {k.decode(errors="backslashreplace"): v.decode(errors="backslashreplace") for k, v in fields.items()}
        self.unreadable.append((stream, entry_id, reason, json.dumps(text)))


@dataclass(frozen=True, slots=True)
class Written:
    """Rows a batch added; fewer than it held when some were stored before."""

    decisions: int
    events: int
    unreadable: int


class AuditStore:
    """The audit log in SQLite: decision and connection-event rows keyed by their entries, so a re-read adds nothing."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.db = db
        self.path = path

    @classmethod
    def open(cls, path: Path) -> AuditStore:
        """Open (creating if need be) the database for writing."""
        try:
            db = sqlite3.connect(path)
            # WAL: queries can read while `audit run` writes. FULL: a commit reported to Redis (then acknowledged
            # there) must survive a power cut, or the entry would be lost from both sides.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=5000")
            _create_or_upgrade(db)
        except sqlite3.Error as exc:
            raise AuditStoreError(f"cannot open the audit database {path}: {exc}") from exc
        return cls(db, path)

    @classmethod
    def open_readonly(cls, path: Path) -> AuditStore:
        """Open an existing database for queries; a missing file is an error, not a new empty database."""
        if not path.is_file():
            raise AuditStoreError(f"no audit database at {path} (write one with `fleetgate audit run --db {path}`)")
        try:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            db.execute("PRAGMA busy_timeout=5000")
        except sqlite3.Error as exc:
            raise AuditStoreError(f"cannot open the audit database {path}: {exc}") from exc
        return cls(db, path)

    def close(self) -> None:
        self.db.close()

    def write(self, batch: Batch) -> Written:
        """Store a batch in one transaction, committed when this returns; rows already stored are left alone."""
        try:
            with self.db:
                decisions = self.db.executemany(_insert("decisions", _DECISION_COLUMNS), batch.decisions)
                events = self.db.executemany(_insert("connection_events", _EVENT_COLUMNS), batch.events)
                unreadable = self.db.executemany(_insert("unreadable", _UNREADABLE_COLUMNS), batch.unreadable)
        except sqlite3.Error as exc:
            raise AuditStoreError(f"cannot write the audit database {self.path}: {exc}") from exc
        return Written(decisions.rowcount, events.rowcount, unreadable.rowcount)

    def vehicle_decisions(self, vehicle_id: str, limit: int) -> list[dict[str, Any]]:
        """A vehicle's decisions, newest first, as they were published."""
        rows = self._query(
            "SELECT data FROM decisions WHERE vehicle_id = ?"
            " ORDER BY decided_at DESC, entry_ms DESC, entry_seq DESC LIMIT ?",
            (vehicle_id, limit),
        )
        return [json.loads(data) for (data,) in rows]

    def denials(self, by: DenialGrouping) -> list[tuple[str | None, int]]:
        """How many decisions were not ALLOWED, per permission (None: unknown target) or per outcome."""
        column = {"permission": "permission", "outcome": "outcome"}[by]  # never user text in the SQL
        rows = self._query(
            f"SELECT {column}, COUNT(*) AS n FROM decisions WHERE outcome <> 'ALLOWED'"
            f" GROUP BY {column} ORDER BY n DESC, {column}",
            (),
        )
        return [(key, int(n)) for key, n in rows]

    def consent(self, connection_id: str) -> list[dict[str, Any]]:
        """A connection's events in the order they were published, each with its stream entry id."""
        rows = self._query(
            "SELECT entry_id, data FROM connection_events WHERE connection_id = ? ORDER BY entry_ms, entry_seq",
            (connection_id,),
        )
        return [{"entry_id": entry_id, **json.loads(data)} for entry_id, data in rows]

    def _query(self, sql: str, parameters: tuple[Any, ...]) -> list[Any]:
        try:
            return self.db.execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            raise AuditStoreError(f"cannot read the audit database {self.path}: {exc}") from exc


def _create_or_upgrade(db: sqlite3.Connection) -> None:
    """Create the tables, or bring a file from before shards up to date: in one transaction, all or nothing."""
    upgrading = _table_exists(db, "connection_events") and "shard_tag" not in _columns(db, "connection_events")
    script = (_SET_ASIDE_UNSHARDED_EVENTS + _SCHEMA + _COPY_UNSHARDED_EVENTS) if upgrading else _SCHEMA
    try:
        db.executescript(f"BEGIN;\n{script}\nCOMMIT;")
    except sqlite3.Error:
        db.rollback()  # a script stops at its failing statement, inside its own BEGIN: undo what came before
        raise


def _table_exists(db: sqlite3.Connection, table: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone() is not None


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def _insert(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT OR IGNORE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
