"""The event loop every long-running fleetgate process runs on: uvloop where it exists (a dependency, but not on
Windows), else asyncio's. uvloop's socket writes and callbacks cost less CPU per message; python -m bench.api
measures it."""

from __future__ import annotations

try:
    from uvloop import run as run_loop
except ImportError:  # pragma: no cover
    from asyncio import run as run_loop  # type: ignore[assignment]

__all__ = ["run_loop"]
