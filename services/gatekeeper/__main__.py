"""`python -m services.gatekeeper [--workers N]`: gatekeeper workers configured by `FLEETGATE_*` variables.

What the load test and `fleetgate gatekeeper run --workers N` start as child processes; people use the command.
"""

from __future__ import annotations

import argparse

from services.gatekeeper.processes import run_workers
from services.settings import Settings

parser = argparse.ArgumentParser(prog="python -m services.gatekeeper", description=__doc__)
parser.add_argument("--workers", type=int, default=1, help="worker processes (each one consumer in the group)")
arguments = parser.parse_args()
if arguments.workers < 1:
    parser.error("--workers must be at least 1")
raise SystemExit(run_workers(Settings(), arguments.workers))
