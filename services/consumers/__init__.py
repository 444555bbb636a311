"""Downstream consumers of the gatekeeper's streams: a live `tail` of decisions and an SQLite `audit` log.

They read `{prefix}:decisions` and `{prefix}:connection-events` (with `FLEETGATE_SHARDS`, those of every shard, one
shard per read) through the wire contract only (field `data`, JSON with `"v": 1`), as any program in any language
could.
"""
