"""An application: the client of Connect and the API. For now only its mode (which accounts Connect offers)."""

from __future__ import annotations

from enum import StrEnum

DEFAULT_APP_ID = "default"
"""The application every command uses when none is named; data written before applications existed is its."""


class AppMode(StrEnum):
    """Which vehicles Connect offers: the simulated fleet's owners (live, simulated) or Smartcar's test accounts."""

    LIVE = "live"
    TEST = "test"
    SIMULATED = "simulated"
