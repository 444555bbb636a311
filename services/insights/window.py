"""A look-back window (`30m`, `12h`, `7d`, `2w`) and the hourly buckets it covers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.errors import ServiceError

HOUR_S = 3600
_UNITS = {"m": 60, "h": HOUR_S, "d": 24 * HOUR_S, "w": 7 * 24 * HOUR_S}
_WINDOW = re.compile(r"([0-9]{1,5})([mhdw])")


class WindowError(ServiceError):
    """A window that is not a positive count of minutes, hours, days or weeks."""


def parse_window(text: str) -> timedelta:
    """`30m`, `12h`, `7d`, `2w` as a timedelta; anything else (`7x`, `0d`, `-1d`, `7`) is a WindowError."""
    found = _WINDOW.fullmatch(text.strip())
    if found is None:
        raise WindowError(f"window {text!r}: give a whole number and a unit, m, h, d or w (30m, 12h, 7d, 2w)")
    count, unit = int(found[1]), found[2]
    if count == 0:
        raise WindowError(f"window {text!r} is empty: give at least 1{unit}")
    return timedelta(seconds=count * _UNITS[unit])


def format_window(window: timedelta) -> str:
    """A window as parse_window reads it, in its largest whole unit up to days (`7d`, not `168h` or `1w`)."""
    seconds = int(window.total_seconds())
    for unit in "dhm":
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def epoch_hour(moment: datetime) -> int:
    """The hour a moment falls in, counted from the Unix epoch: a usage bucket's number."""
    return int(moment.timestamp()) // HOUR_S


@dataclass(frozen=True, slots=True)
class Window:
    """The hours a look-back reads: every hourly bucket that overlaps [now - since, now], so up to an hour more."""

    since: timedelta
    first_hour: int
    last_hour: int

    @classmethod
    def ending(cls, since: timedelta, now: datetime | None = None) -> Window:
        now = now or datetime.now(UTC)
        return cls(since, epoch_hour(now - since), epoch_hour(now))

    @property
    def hours(self) -> range:
        return range(self.first_hour, self.last_hour + 1)

    @property
    def start(self) -> datetime:
        """The start of the first hour read."""
        return datetime.fromtimestamp(self.first_hour * HOUR_S, UTC)

    @property
    def end(self) -> datetime:
        """The end of the last hour read (in the future while that hour runs)."""
        return datetime.fromtimestamp((self.last_hour + 1) * HOUR_S, UTC)
