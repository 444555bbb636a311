"""Opening Redis connections, and naming a server without leaking its password."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis


def connect(url: str) -> Redis:
    """An asyncio client for `url` (bytes in, bytes out; hiredis parses replies when installed).

    RESP2, whatever the client library's default: redis-py 8 switched to RESP3, whose replies have other shapes
    (an XREADGROUP reply is a map, not a list), and the gatekeeper's hot path reads raw replies (wire.py).
    """
    return Redis.from_url(url, decode_responses=False, protocol=2)


def redact(url: str) -> str:
    """The URL with any password (in the user part or a `password=` query parameter) replaced by `***`."""
    parts = urlsplit(url)
    query = "&".join(
        f"{name}=***" if name.lower() == "password" else f"{name}={value}" if sep else name
        for name, sep, value in (pair.partition("=") for pair in parts.query.split("&") if pair)
    )
    netloc = parts.netloc
    if parts.password is not None:
        user = parts.username or ""
        host = parts.hostname or ""
        netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
