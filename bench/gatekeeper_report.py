"""The gatekeeper benchmark's figures and tables: per-drain figures, the rounds' medians and spreads, printing."""

from __future__ import annotations

import statistics

CEILING = "ceiling (hiredis, hand-packed RESP, no decision)"
GATEKEEPER = "fleetgate gatekeeper x1 process"
# The drain table's columns, each printed as `median (min-max)` over the rounds.
DRAIN_COLUMNS = ("msg/s", "worker CPU µs/msg", "redis CPU µs/msg", "sum µs/msg", "x gatekeeper")

Figures = dict[str, float]
Spread = dict[str, float]  # median, min, max


def drain_figures(messages: int, wall: float, worker_cpu: float, redis_cpu: float) -> Figures:
    """One drain's figures from what was measured: messages, wall seconds, CPU seconds of worker(s) and redis."""
    worker_us, redis_us = 1e6 * worker_cpu / messages, 1e6 * redis_cpu / messages
    return {"messages": messages, "seconds": wall, "worker CPU s": worker_cpu, "redis CPU s": redis_cpu,
            "msg/s": messages / wall, "worker CPU %": 100 * worker_cpu / wall,
            "redis CPU %": 100 * redis_cpu / wall, "worker CPU µs/msg": worker_us, "redis CPU µs/msg": redis_us,
            "sum µs/msg": worker_us + redis_us}  # fmt: skip


def spread(values: list[float]) -> Spread:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def add_ratios(round_: dict[str, Figures]) -> None:
    """Each contender's msg/s over the gatekeeper x1's in the same round, as `x gatekeeper`."""
    for row in round_.values():
        row["x gatekeeper"] = row["msg/s"] / round_[GATEKEEPER]["msg/s"]


def summarize(names: list[str], rounds: list[dict[str, Figures]]) -> dict[str, dict[str, Spread]]:
    """Per contender (in `names` order) and figure: median, min and max over the rounds."""
    return {name: {figure: spread([r[name][figure] for r in rounds]) for figure in rounds[0][name]} for name in names}


def versus_ceiling(rounds: list[dict[str, Figures]]) -> dict[str, Spread]:
    """The gatekeeper x1 over the ceiling, per round: msg/s and sum µs/msg; their medians and spreads."""
    figures = ("msg/s", "sum µs/msg")
    return {figure: spread([r[GATEKEEPER][figure] / r[CEILING][figure] for r in rounds]) for figure in figures}


def cell(value: Spread, decimals: int | None = None) -> str:
    """`median (min-max)`; by default whole numbers from 100 up, one decimal below."""
    if decimals is None:
        decimals = 0 if value["max"] >= 100 else 1
    return f"{value['median']:,.{decimals}f} ({value['min']:,.{decimals}f}-{value['max']:,.{decimals}f})"


def print_rows(title: str, rows: dict[str, list[str]], columns: tuple[str, ...]) -> None:
    """Right-aligned cells under their headers, each column as wide as its widest cell."""
    name_width = max(len(name) for name in rows)
    widths = [max(len(column), *(len(cells[i]) for cells in rows.values())) for i, column in enumerate(columns)]
    print(f"\n{title}")
    print(" " * name_width + "".join(f"  {c:>{w}}" for c, w in zip(columns, widths, strict=True)))
    for name, cells in rows.items():
        print(f"{name:<{name_width}}" + "".join(f"  {c:>{w}}" for c, w in zip(cells, widths, strict=True)))


def drain_table(title: str, summary: dict[str, dict[str, Spread]]) -> None:
    rows = {
        name: [cell(figures[c], 2 if c.startswith("x ") else None) for c in DRAIN_COLUMNS]
        for name, figures in summary.items()
    }
    print_rows(title, rows, DRAIN_COLUMNS)


def headline(ratios: dict[str, Spread]) -> None:
    print(
        f"\ngatekeeper x1 / ceiling, median (min-max) of the rounds' ratios: msg/s {cell(ratios['msg/s'], 2)}, "
        f"sum CPU µs/msg {cell(ratios['sum µs/msg'], 2)}"
    )


def table(title: str, rows: dict[str, Figures]) -> None:
    """One figure a cell (the latency and memory sections); ratios (`x ...`) to two decimals."""
    columns = list(next(iter(rows.values())))
    decimals = {c: 2 if c.startswith("x ") else 1 for c in columns}  # a ratio as small as 0.01 stays visible
    print(f"\n{title}")
    print(f"{'':<52}" + "".join(f"{c:>16}" for c in columns))
    for name, row in rows.items():
        print(f"{name:<52}" + "".join(f"{row[c]:>16,.{decimals[c]}f}" for c in columns))
