"""Tiny inline-SVG charts for the load-test report: line charts, 100 % stacked bars and plain horizontal bars.

Hand-drawn rather than matplotlib so the report needs no new dependency and stays one offline HTML file.
Every text that reaches the markup goes through `html.escape`; empty inputs give a "no data" placeholder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 760
_FONT = 'font-family="sans-serif" font-size="11"'
_CHAR_PX = 6.5  # rough width of a lower-case character at font-size 11, to size label columns
_UPPER_PX = 8.0  # capitals are wider: outcomes and response codes are written in them
_MAX_LABEL_CHARS = 40
_MIN_LABEL_PX = 60
_BAR_HEIGHT = 18
_BAR_GAP = 6


@dataclass(frozen=True)
class Series:
    """One line of a line chart; a `None` value is a gap (the line breaks there instead of bridging it)."""

    name: str
    colour: str
    points: Sequence[tuple[float, float | None]]


@dataclass(frozen=True)
class Segment:
    """One part of a stacked bar."""

    name: str
    value: int
    colour: str


@dataclass(frozen=True)
class Bar:
    """One plain horizontal bar: `value` sets its length, `text` is printed after it."""

    label: str
    value: float
    text: str


def no_data(caption: str) -> str:
    """The placeholder shown where a chart would have nothing to draw."""
    return f'<p class="no-data">{escape(caption)}: no data</p>'


def fmt(value: float) -> str:
    """A tick or label number: integers with thousands separators, others with 3 significant digits."""
    if math.isfinite(value) and value == int(value):
        return f"{int(value):,}"
    return f"{value:.3g}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) covering low..high."""
    if high <= low:
        high = low + 1.0  # a single point or all-equal values still need an axis with some extent
    raw_step = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw_step)
    first = math.floor(low / step)
    last = math.ceil(high / step)
    return [i * step for i in range(first, last + 1)]


def _label(text: str) -> str:
    """Shortened for the label column; the full text stays in the bar's tooltip."""
    return text if len(text) <= _MAX_LABEL_CHARS else text[: _MAX_LABEL_CHARS - 1] + "…"


def _text_px(text: str) -> float:
    """About how wide `text` is drawn at font-size 11."""
    return sum(_UPPER_PX if c.isupper() else _CHAR_PX for c in text)


def _label_width(labels: Sequence[str]) -> int:
    widest = max((_text_px(_label(label)) for label in labels), default=0.0)
    return max(_MIN_LABEL_PX, int(widest) + 12)


def _legend(entries: Sequence[tuple[str, str]], x: float, y: float) -> tuple[list[str], float]:
    """Colour keys left to right from (x, y), wrapping at the chart's edge; also returns the last line's y."""
    parts: list[str] = []
    start = x
    for name, colour in entries:
        width = 24 + _text_px(name)
        if x > start and x + width > WIDTH:
            x, y = start, y + 16
        parts.append(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 14:.1f}" y="{y:.1f}" {_FONT}>{escape(name)}</text>')
        x += width
    return parts, y


def _svg(height: float, caption: str, body: list[str]) -> str:
    # No xmlns: inline SVG in HTML does not need it, and the page then names no URL at all.
    return (
        f'<svg width="{WIDTH}" height="{height:.0f}" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" role="img" aria-label="{escape(caption)}">' + "".join(body) + "</svg>"
    )


def _runs(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """The contiguous stretches of points without a gap."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, y))
    return [run for run in runs if run]


def line_chart(series: Sequence[Series], *, caption: str, x_label: str, y_label: str, height: int = 280) -> str:
    """Lines over a shared x axis; y starts at 0 so rates and latencies are not visually exaggerated."""
    present = [(x, y) for s in series for x, y in s.points if y is not None]
    if not present:
        return no_data(caption)
    left, right, top, bottom = 64, 16, 28, 40
    x_ticks = nice_ticks(min(x for x, _ in present), max(x for x, _ in present))
    y_ticks = nice_ticks(0.0, max(y for _, y in present))
    x0, x1, y1 = x_ticks[0], x_ticks[-1], y_ticks[-1]
    plot_w, plot_h = WIDTH - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return top + plot_h - y / y1 * plot_h

    body = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>']
    for tick in y_ticks:
        body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{py(tick):.1f}" y2="{py(tick):.1f}" stroke="#eee"/>')
        body.append(f'<text x="{left - 4}" y="{py(tick) + 4:.1f}" text-anchor="end" {_FONT}>{fmt(tick)}</text>')
    for tick in x_ticks:
        body.append(
            f'<line x1="{px(tick):.1f}" x2="{px(tick):.1f}" y1="{top + plot_h}" y2="{top + plot_h + 4}" stroke="#999"/>'
        )
        body.append(f'<text x="{px(tick):.1f}" y="{top + plot_h + 16}" text-anchor="middle" {_FONT}>{fmt(tick)}</text>')
    body.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle" {_FONT}>{escape(x_label)}</text>'
    )
    body.append(f'<text x="{left}" y="{top - 10}" {_FONT}>{escape(y_label)}</text>')
    for s in series:
        for run in _runs(s.points):
            coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in run)
            body.append(f'<polyline points="{coords}" fill="none" stroke="{s.colour}" stroke-width="1.5"/>')
            if len(run) == 1:  # a polyline of one point is invisible
                body.append(f'<circle cx="{px(run[0][0]):.1f}" cy="{py(run[0][1]):.1f}" r="2.5" fill="{s.colour}"/>')
    body += _legend([(s.name, s.colour) for s in series], left + plot_w / 2, top - 10)[0]
    return _svg(height, caption, body)


def stacked_bars(rows: Sequence[tuple[str, Sequence[Segment]]], *, caption: str) -> str:
    """One 100 % bar per row; each segment's tooltip gives its count and share."""
    rows = [(label, segments) for label, segments in rows if sum(s.value for s in segments) > 0]
    if not rows:
        return no_data(caption)
    label_w = _label_width([label for label, _ in rows])
    bar_w = WIDTH - label_w - 16
    # The legend lists each segment name once, in the order the rows first show it, and may wrap.
    legend = {s.name: s.colour for _, segments in rows for s in segments if s.value > 0}
    body, legend_y = _legend(list(legend.items()), 8, 16)
    first_y = legend_y + 12
    height = first_y + len(rows) * (_BAR_HEIGHT + _BAR_GAP)
    for index, (label, segments) in enumerate(rows):
        y = first_y + index * (_BAR_HEIGHT + _BAR_GAP)
        total = sum(s.value for s in segments)
        body.append(
            f'<text x="{label_w - 6}" y="{y + 13:.1f}" text-anchor="end" {_FONT}>{escape(_label(label))}</text>'
        )
        x = float(label_w)
        for segment in segments:
            if segment.value <= 0:
                continue
            width = segment.value / total * bar_w
            share = 100 * segment.value / total
            tip = f"{label}: {segment.name} {segment.value:,} of {total:,} ({share:.1f} %)"
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{_BAR_HEIGHT}" fill="{segment.colour}">'
                f"<title>{escape(tip)}</title></rect>"
            )
            x += width
    return _svg(height, caption, body)


def bars(items: Sequence[Bar], *, caption: str, colour: str) -> str:
    """Horizontal bars scaled to the largest value, each followed by its text."""
    if not items:
        return no_data(caption)
    label_w = _label_width([item.label for item in items])
    text_w = 170  # room for the longest text, as in '100.0 % (123,456/123,456)'
    bar_w = WIDTH - label_w - text_w
    top = max((item.value for item in items), default=0.0) or 1.0  # all-zero values: bars of no length, no 0/0
    height = 10 + len(items) * (_BAR_HEIGHT + _BAR_GAP)
    body: list[str] = []
    for index, item in enumerate(items):
        y = 6 + index * (_BAR_HEIGHT + _BAR_GAP)
        width = max(item.value, 0.0) / top * bar_w
        body.append(
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end" {_FONT}>{escape(_label(item.label))}</text>'
        )
        body.append(
            f'<rect x="{label_w}" y="{y}" width="{width:.1f}" height="{_BAR_HEIGHT}" fill="{colour}">'
            f"<title>{escape(item.label)}: {escape(item.text)}</title></rect>"
        )
        body.append(f'<text x="{label_w + width + 4:.1f}" y="{y + 13}" {_FONT}>{escape(item.text)}</text>')
    return _svg(height, caption, body)
