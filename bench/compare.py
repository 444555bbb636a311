"""Two runs of the gatekeeper benchmark side by side (before and after a change, in one sitting):

    .venv/bin/python -m bench.compare before.json after.json

Per contender in both: the sum of worker and redis-server CPU µs per message, median (min-max) of each run's rounds,
and after/before of the medians; then msg/s the same way. Written by `python -m bench.gatekeeper --json ...`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.gatekeeper_report import Spread, cell, print_rows


def summary(path: Path) -> dict[str, dict[str, Spread]]:
    results: dict[str, Any] = json.loads(path.read_text())
    return dict(results["throughput"]["summary"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args()
    before, after = summary(args.before), summary(args.after)
    both = [name for name in before if name in after]
    for figure in ("sum µs/msg", "msg/s"):
        rows = {
            name: [
                cell(before[name][figure]),
                cell(after[name][figure]),
                f"{after[name][figure]['median'] / before[name][figure]['median']:.2f}",
            ]
            for name in both
        }
        print_rows(f"{figure}: {args.before} -> {args.after}", rows, ("before", "after", "after/before"))


if __name__ == "__main__":
    main()
