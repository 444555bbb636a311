"""The audit's SQLite store without Redis: upgrading a file from before shards, and the shard tag of a stream."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from schemas.messages import ConnectionEventMessage
from services.consumers.audit_store import AuditStore, Batch
from services.streams import hash_tag
from tests.test_audit import event_data, rows

# The connection_events table as an audit file from before shards has it: keyed by entry id alone.
UNSHARDED_EVENTS_TABLE = """
CREATE TABLE connection_events (
    entry_id TEXT PRIMARY KEY, entry_ms INTEGER NOT NULL, entry_seq INTEGER NOT NULL, event_id TEXT NOT NULL,
    type TEXT NOT NULL, connection_id TEXT NOT NULL, vehicle_id TEXT NOT NULL, permissions TEXT NOT NULL,
    config_version INTEGER, scope TEXT, occurred_at TEXT NOT NULL, data TEXT NOT NULL
);
CREATE INDEX events_by_connection ON connection_events (connection_id, entry_ms, entry_seq);
INSERT INTO connection_events VALUES
    ('5-0', 5, 0, 'e-old', 'connection.created', 'c-1', 'veh-1', 'read_odometer', 1, NULL, '2026-01-01', '{}');
"""


def test_opening_a_file_from_before_shards_upgrades_it_and_keeps_its_events(tmp_path: Path) -> None:
    """Its events stay (as the unsharded stream's, tag ""): re-stored from that stream they add nothing; the same
    entry id from a shard's stream is another event."""
    db = tmp_path / "audit.db"
    with contextlib.closing(sqlite3.connect(db)) as old:
        old.executescript(UNSHARDED_EVENTS_TABLE)
    store = AuditStore.open(db)
    try:
        assert rows(db, "SELECT shard_tag, entry_id, event_id FROM connection_events") == [("", "5-0", "e-old")]
        tables = {name for (name,) in rows(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert tables == {"decisions", "connection_events", "unreadable"}  # the old table is gone
        assert rows(db, "SELECT tbl_name FROM sqlite_master WHERE name = 'events_by_connection'") == [
            ("connection_events",)
        ]
        event = ConnectionEventMessage.model_validate_json(event_data("c-1"))
        batch = Batch()
        batch.add_event("p:connection-events", "5-0", event, "{}")
        assert store.write(batch).events == 0
        batch = Batch()
        batch.add_event("p:{s1.0}:connection-events", "5-0", event, "{}")
        assert store.write(batch).events == 1
    finally:
        store.close()
    AuditStore.open(db).close()  # an upgraded file opens as it is
    assert rows(db, "SELECT shard_tag, entry_id FROM connection_events ORDER BY shard_tag") == [
        ("", "5-0"),
        ("s1.0", "5-0"),
    ]


def test_hash_tag_follows_redis_rule() -> None:
    """The text between the first `{` and the next `}`, if not empty; else none."""
    assert hash_tag("p:{s3.3}:decisions") == "s3.3"
    assert hash_tag("p:decisions") == ""
    assert hash_tag("p:{}:decisions") == ""
    assert hash_tag("p:{a}{b}") == "a"
    assert hash_tag("p:{a") == ""
