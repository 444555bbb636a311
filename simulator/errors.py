"""The simulator's errors: one root, under the project's FleetgateError (the CLI reports those as `error: ...`)."""

from __future__ import annotations

from schemas.errors import FleetgateError


class SimulatorError(FleetgateError):
    """Something the simulator could not do; the message says what and why."""


class MixError(SimulatorError, ValueError):
    """A fleet mix file that cannot be read or does not validate; the message names the key."""


class LoadTestError(SimulatorError):
    """A load test that could not run (as opposed to one that ran and found problems)."""
