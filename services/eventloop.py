"""The event loop of `fleetgate serve` and the vehicles service: uvloop where it exists (a dependency, but not on
Windows), else asyncio's. Their socket writes and callbacks cost less CPU per message on it (python -m bench.api).
The gatekeeper stays on asyncio's loop: on uvloop it drained no faster (python -m bench.gatekeeper, 47k and 41k
msg/s in two runs of one sitting, within the benchmark's noise), so it keeps the loop its figures were taken on."""

from __future__ import annotations

try:
    from uvloop import run as run_loop
except ImportError:  # pragma: no cover
    from asyncio import run as run_loop  # type: ignore[assignment]

__all__ = ["run_loop"]
