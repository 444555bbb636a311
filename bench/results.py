"""Where a benchmark leaves its figures: JSON under bench/results/, with the machine that measured them."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def write_results(path: Path, results: dict[str, Any]) -> None:
    """Write `results` and the machine (Python version, CPU count) to `path` as JSON; say where."""
    results["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {path}")
