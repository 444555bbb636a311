"""The dashboard's New webhook form: its fields <-> a draft, and what is wrong with a draft, one line per field.

Fields: `name`, `url`, `error_url` (optional), `signal` (a code, repeated), `on_change` (a code whose change makes an
event, repeated; the page ticks every one by default, and a tick on a signal not used is ignored), `schedule`
(seconds, optional), `vehicle_errors` (a checkbox) and `token` (the app's management token: it becomes the signing
key, and the session does not keep it). The rules are the webhook's own (schemas/webhooks.py: `callback_url`,
`known_signals`, `Triggers`) so that the form refuses what `fleetgate webhooks create` refuses, with the same words;
the token is checked by the page, which knows the app.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from schemas.catalog import get_catalog
from schemas.webhooks import MAX_NAME, MAX_SIGNALS, MIN_SCHEDULE_S, Triggers, WebhookError, callback_url, known_signals

MAX_SCHEDULE_S = 30 * 86_400
"""As `Triggers.schedule_s` allows."""
REPEATED = ("signal", "on_change")


@dataclass(frozen=True, slots=True)
class WebhookDraft:
    """The form as posted (or as the empty form shows it: every `on_change` ticked, vehicle errors on)."""

    name: str = ""
    url: str = ""
    error_url: str = ""
    signals: tuple[str, ...] = ()
    on_change: frozenset[str] = field(default_factory=frozenset)
    change_all: bool = True
    """The empty form: every signal's `on_change` box is ticked."""
    schedule: str = ""
    vehicle_errors: bool = True

    @classmethod
    def from_fields(cls, fields: Iterable[tuple[str, Any]]) -> WebhookDraft:
        """From the posted items; the token is not part of a draft (it is never rendered back)."""
        single: dict[str, str] = {}
        repeated: dict[str, list[str]] = {name: [] for name in REPEATED}
        for name, value in fields:
            if not isinstance(value, str):
                continue
            if name in repeated:
                if value:
                    repeated[name].append(value)
            else:
                single.setdefault(name, value)
        return cls(
            name=single.get("name", "").strip(),
            url=single.get("url", "").strip(),
            error_url=single.get("error_url", "").strip(),
            signals=tuple(dict.fromkeys(repeated["signal"])),
            on_change=frozenset(repeated["on_change"]),
            change_all=False,
            schedule=single.get("schedule", "").strip(),
            vehicle_errors=single.get("vehicle_errors") == "on",
        )

    def change_ticked(self, code: str) -> bool:
        """Whether the form shows the signal's On change box ticked: a signal not in use keeps the default (ticked),
        so that ticking it later makes it a change trigger as on the empty form."""
        return self.change_all or code not in self.signals or code in self.on_change

    @property
    def change_codes(self) -> tuple[str, ...] | None:
        """`Triggers.signal_changed`: None when every used signal is ticked (any change), else the ticked ones."""
        ticked = tuple(code for code in self.signals if code in self.on_change)
        return None if len(ticked) == len(self.signals) else ticked

    def schedule_s(self) -> int | None:
        """The schedule in seconds; None when empty. ValueError when it is not a whole number in range."""
        if not self.schedule:
            return None
        seconds = int(self.schedule)
        if not MIN_SCHEDULE_S <= seconds <= MAX_SCHEDULE_S:
            raise ValueError(seconds)
        return seconds

    def triggers(self) -> Triggers:
        """The triggers it asks for (call once `problems()` is empty)."""
        return Triggers(
            signal_changed=self.change_codes, schedule_s=self.schedule_s(), vehicle_error=self.vehicle_errors
        )

    def problems(self, allowed_hosts: Iterable[str]) -> dict[str, str]:
        """Field -> what is wrong with it, one line each; empty when the draft makes a webhook."""
        found: dict[str, str] = {}
        if not self.name:
            found["name"] = "Give the webhook a name (it is sent as meta.webhookName)."
        elif len(self.name) > MAX_NAME:
            found["name"] = f"The name is longer than {MAX_NAME} characters."
        for name, url in (("url", self.url), ("error_url", self.error_url)):
            if not url:
                if name == "url":
                    found[name] = "Give the callback URL the events are POSTed to (http:// or https://)."
                continue
            try:
                callback_url(url, allowed_hosts)
            except WebhookError as error:
                found[name] = _sentence(str(error))
        if (signals := self._signals_problem()) is not None:
            found["signals"] = signals
        try:
            schedule = self.schedule_s()
        except ValueError:
            found["schedule"] = f"The schedule is a whole number of seconds from {MIN_SCHEDULE_S} to {MAX_SCHEDULE_S}."
            schedule = None
        if "signals" not in found and "schedule" not in found and self.change_codes == () and schedule is None:
            found["signals"] = (
                "Nothing would make an event after the first: tick On change for a signal, or set a schedule."
            )
        return found

    def _signals_problem(self) -> str | None:
        if not self.signals:
            return "Tick at least one signal: every event carries the signals ticked here."
        if len(self.signals) > MAX_SIGNALS:
            return f"A webhook carries at most {MAX_SIGNALS} signals."
        try:
            known_signals(self.signals)
        except WebhookError as error:
            return _sentence(str(error))
        return None


def signal_groups(in_access: frozenset[str]) -> list[dict[str, Any]]:
    """The catalog's signals by group, as the checklist lists them: each row with its search text and whether the
    app's published Vehicle Access asks for it (a signal it does not ask for arrives as a PERMISSION error)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for signal in get_catalog().signals:
        groups.setdefault(signal.group, []).append(
            {
                "code": signal.code,
                "name": signal.name,
                "permission": signal.permission,
                "in_access": signal.code in in_access,
                "search": " ".join((signal.name, signal.code, signal.group, signal.permission)).lower(),
            }
        )
    return [{"name": name, "rows": rows} for name, rows in groups.items()]


def _sentence(text: str) -> str:
    """An error of the schemas (lower-case, no full stop) as the page's one line."""
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "."
