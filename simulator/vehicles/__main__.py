"""`python -m simulator.vehicles`: one vehicles service configured by `FLEETGATE_*` variables.

What the load test starts as a child process (as it starts `python -m services.gatekeeper`); people use
`fleetgate vehicles serve`, the same service.
"""

from __future__ import annotations

from services.settings import Settings
from simulator.vehicles.run import run_service

raise SystemExit(run_service(Settings()))
