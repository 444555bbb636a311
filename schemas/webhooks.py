"""Webhooks, pure: a definition, the callback URL rule, the internal event message, signatures, and Smartcar's
payload version 4.0 (`../shared/reference/smartcar_connect_api.md` §2.3; docs/webhooks.md says which choices are
fleetgate's).

Timestamps in payloads are epoch milliseconds, as Smartcar's (the VERIFY example in its docs has an ISO
`deliveredAt`; fleetgate follows it there). Webhook errors carry only `{type, code}` per signal.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.catalog import Signal, get_catalog
from schemas.errors import UnknownNameError
from schemas.signal_names import group_name, signal_name

PAYLOAD_VERSION = "4.0"
MAX_NAME = 100
MAX_URL = 2048
MAX_SIGNALS = 100
MIN_SCHEDULE_S = 1


class WebhookError(ValueError):
    """A webhook definition or callback URL that is not acceptable; the message says why."""


class EventType(StrEnum):
    VEHICLE_STATE = "VEHICLE_STATE"
    VEHICLE_ERROR = "VEHICLE_ERROR"
    VERIFY = "VERIFY"


class Reason(StrEnum):
    """Why an event was made. FIRST_DELIVERY and SCHEDULED are always delivered; CHANGE_CHECK only when a
    `signal_changed` signal differs from what this (webhook, vehicle) was last sent; REVOKED is the last event a
    revoked connection gets."""

    FIRST_DELIVERY = "FIRST_DELIVERY"
    SCHEDULED = "SCHEDULED"
    CHANGE_CHECK = "CHANGE_CHECK"
    REVOKED = "REVOKED"


def callback_url(url: str, allowed_hosts: Iterable[str] = ()) -> str:
    """`url` if fleetgate may POST to it: http or https, a host, no user name or password in it, no fragment, and
    its host among `allowed_hosts` when that is not empty. Raises WebhookError naming what is wrong."""
    if len(url) > MAX_URL:
        raise WebhookError(f"the callback URL is longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise WebhookError(f"{url!r} is not a URL: {error}") from None
    if parts.scheme not in {"http", "https"}:
        raise WebhookError(f"{url!r}: a callback URL must start with http:// or https://")
    if not parts.hostname:
        raise WebhookError(f"{url!r}: a callback URL needs a host")
    if parts.username is not None or parts.password is not None:
        raise WebhookError("a callback URL must not carry a user name or password")
    if parts.fragment:
        raise WebhookError(f"{url!r}: a callback URL has no #fragment")
    if port == 0:
        raise WebhookError(f"{url!r}: port 0 is not a port")
    allowed = {_host(h) for h in allowed_hosts if h.strip()}
    if allowed and _host(parts.hostname) not in allowed:
        raise WebhookError(f"{parts.hostname!r} is not among the allowed webhook hosts ({', '.join(sorted(allowed))})")
    return url


def _host(host: str) -> str:
    """A host name lower-cased, an IP address in its canonical form (so `::1` and `[0:0::1]` are one host)."""
    host = host.strip().strip("[]").lower()
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.rstrip(".")


class Triggers(BaseModel):
    """What makes an event: a change of one of `signal_changed` (None: any of the webhook's signals), a schedule
    every `schedule_s` seconds, and VEHICLE_ERROR events when a read answers a vehicle error."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    signal_changed: tuple[str, ...] | None = None
    schedule_s: Annotated[int, Field(ge=MIN_SCHEDULE_S, le=30 * 86_400)] | None = None
    vehicle_error: bool = True


class Webhook(BaseModel):
    """One application's webhook: where events go and which signals they carry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1
    id: Annotated[str, Field(pattern=r"^[0-9a-f-]{36}$")]
    app_id: str
    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
    callback_url: str
    error_callback_url: str | None = None
    signals: Annotated[tuple[str, ...], Field(min_length=1, max_length=MAX_SIGNALS)]
    triggers: Triggers = Triggers()
    verified: bool = False
    created_at: int

    @field_validator("signals")
    @classmethod
    def _known_signals(cls, codes: tuple[str, ...]) -> tuple[str, ...]:
        return known_signals(codes)

    @field_validator("callback_url", "error_callback_url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        return None if url is None else callback_url(url)

    @model_validator(mode="after")
    def _triggers_name_own_signals(self) -> Webhook:
        extra = set(self.triggers.signal_changed or ()) - set(self.signals)
        if extra:
            raise WebhookError(f"signal_changed names signals the webhook does not carry: {', '.join(sorted(extra))}")
        return self

    @property
    def change_codes(self) -> tuple[str, ...]:
        """The signals whose change makes an event."""
        return self.signals if self.triggers.signal_changed is None else self.triggers.signal_changed

    @property
    def error_url(self) -> str:
        """Where VEHICLE_ERROR events go: the separate error callback URL if there is one."""
        return self.error_callback_url or self.callback_url


def known_signals(codes: Iterable[str]) -> tuple[str, ...]:
    """The codes, without duplicates and in their order, if every one is in the catalog; else WebhookError naming
    the first unknown code and the likely one."""
    catalog = get_catalog()
    try:
        return tuple({catalog.signal(code).code: None for code in codes})
    except UnknownNameError as error:
        raise WebhookError(str(error)) from None


class TriggerRef(BaseModel):
    """A payload's `triggers[]` entry: `{type, signal?: {code, name, group}}`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    signal: dict[str, str] | None = None


class WebhookEvent(BaseModel):
    """An event on `P:webhook-events`, internal to fleetgate: what to deliver to one webhook about one vehicle.
    `event_id` is fixed here and kept by every retry and redelivery."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1
    event_id: str
    event_type: Literal[EventType.VEHICLE_STATE, EventType.VEHICLE_ERROR]
    reason: Reason
    webhook_id: str
    vehicle_id: str
    connection_id: str
    user_id: str
    errors: tuple[dict[str, Any], ...] = ()
    created_at: int


def sign(key: str, body: bytes | str) -> str:
    """`SC-Signature`: the hex HMAC-SHA256 of the raw body keyed by the app's management token (what the SDK's
    `hash_challenge` / `verify_payload` compute)."""
    data = body.encode() if isinstance(body, str) else body
    return hmac.new(key.encode(), data, hashlib.sha256).hexdigest()


def signal_ref(signal: Signal) -> dict[str, str]:
    """`{code, name, group}` of a signal, as payloads name one."""
    return {"code": signal.code, "name": signal_name(signal), "group": group_name(signal)}


def signal_entry(
    signal: Signal,
    *,
    body: Any = None,
    error: dict[str, Any] | None = None,
    oem_updated_at: int | None = None,
    retrieved_at: int | None = None,
) -> dict[str, Any]:
    """One `data.signals[]` entry: the value, or `status {value: ERROR, error {type, code}}` instead of data. A
    vehicle's error keeps the stale value with it when there is one (as Smartcar's VEHICLE_STATE entries do); no
    value and no error is UNAVAILABLE (capable and permitted, but never read: the v3 API's use)."""
    entry: dict[str, Any] = signal_ref(signal)
    if body is not None:
        entry["body"] = body
        entry["meta"] = {"oemUpdatedAt": oem_updated_at or 0, "retrievedAt": retrieved_at or 0}
    if error is not None:
        entry["status"] = {"value": "ERROR", "error": {"type": error.get("type"), "code": error.get("code")}}
    else:
        entry["status"] = {"value": "SUCCESS" if body is not None else "UNAVAILABLE"}
    return entry


def _meta(webhook: Webhook, delivery_id: str, delivered_at: int, **extra: Any) -> dict[str, Any]:
    return {
        "deliveryId": delivery_id,
        "deliveredAt": delivered_at,
        "version": PAYLOAD_VERSION,
        "webhookId": webhook.id,
        "webhookName": webhook.name,
        "mode": "LIVE",
        **extra,
    }


def state_payload(
    webhook: Webhook,
    event: WebhookEvent,
    *,
    vehicle: dict[str, Any],
    signals: Sequence[dict[str, Any]],
    triggers: Sequence[TriggerRef],
    delivery_id: str,
    delivered_at: int,
) -> dict[str, Any]:
    """A VEHICLE_STATE delivery: every signal of the webhook (the ones that changed are named in `triggers`)."""
    return {
        "eventId": event.event_id,
        "eventType": EventType.VEHICLE_STATE.value,
        "data": {"user": {"id": event.user_id}, "vehicle": vehicle, "signals": list(signals)},
        "triggers": [t.model_dump(exclude_none=True) for t in triggers],
        "meta": _meta(webhook, delivery_id, delivered_at, signalCount=len(signals)),
    }


def error_payload(
    webhook: Webhook, event: WebhookEvent, *, vehicle: dict[str, Any], delivery_id: str, delivered_at: int
) -> dict[str, Any]:
    """A VEHICLE_ERROR delivery: `{eventId, eventType, vehicleId, data{user, vehicle, errors}, meta}`."""
    return {
        "eventId": event.event_id,
        "eventType": EventType.VEHICLE_ERROR.value,
        "vehicleId": event.vehicle_id,
        "data": {"user": {"id": event.user_id}, "vehicle": vehicle, "errors": list(event.errors)},
        "meta": _meta(webhook, delivery_id, delivered_at),
    }


def verify_payload(
    webhook: Webhook, *, event_id: str, challenge: str, delivery_id: str, delivered_at: str
) -> dict[str, Any]:
    """The VERIFY challenge (unsigned). `deliveredAt` is ISO here, as in Smartcar's example of it."""
    return {
        "eventId": event_id,
        "eventType": EventType.VERIFY.value,
        "data": {"challenge": challenge},
        "meta": {
            "deliveryId": delivery_id,
            "deliveredAt": delivered_at,
            "version": PAYLOAD_VERSION,
            "webhookId": webhook.id,
            "webhookName": webhook.name,
        },
    }


def verify_answer_ok(key: str, challenge: str, answer: Any) -> bool:
    """Whether an endpoint's JSON answer to VERIFY is `{"challenge": hex HMAC-SHA256(key, challenge)}`."""
    if not isinstance(answer, dict) or not isinstance(answer.get("challenge"), str):
        return False
    return hmac.compare_digest(answer["challenge"], sign(key, challenge))


REVOKED_DESCRIPTION = (
    "The vehicle owner revoked this application's access to the vehicle. "
    "Please prompt the user to re-authenticate using Smartcar Connect."
)


def revoked_error() -> dict[str, Any]:
    """The VEHICLE_ERROR entry a revoked connection's webhooks get, once: CONNECTED_SERVICES_ACCOUNT / PERMISSION
    (Smartcar's "User revoked permissions" scenario; the description and `docURL` anchor are fleetgate's)."""
    return {
        "type": "CONNECTED_SERVICES_ACCOUNT",
        "code": "PERMISSION",
        "state": "ERROR",
        "description": REVOKED_DESCRIPTION,
        "suggestedUserMessage": "Please reconnect your vehicle to keep using this application.",
        "docURL": "https://smartcar.com/docs/errors/api-errors/connected-services-account-errors#permission",
        "resolution": {"type": "REAUTHENTICATE"},
        "signals": [],
    }
