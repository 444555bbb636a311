"""VERIFY: proving that a webhook's endpoint belongs to the app before anything is delivered to it.

fleetgate POSTs Smartcar's VERIFY event (unsigned, as Smartcar's; a fresh `eventId` and `deliveryId`, an ISO
`deliveredAt`) to the callback URL; the endpoint must answer 2xx with `{"challenge": hex HMAC-SHA256(AMT,
challenge)}`. The outcome is stored as the webhook's `verified` (true or false, so a failed re-verification stops
deliveries) and returned as a `VerifyResult` whose `line` says what happened; the outcome (the reason, when) is
also kept (`P:webhook:{id}:verify`) for the dashboard and `fleetgate webhooks show`. Only the callback URL is
verified: the error callback URL, when there is one, belongs to the same app and is reached with the same
signatures.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.webhooks import Webhook, verify_answer_ok, verify_payload
from services.webhooks.sender import Sender
from services.webhooks.store import VerifyOutcome, WebhookStore

WRONG_ANSWER = "wrong challenge answer"
NO_KEY = "the app has no webhook signing key (create the webhook again with its management token)"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The webhook as stored after VERIFY, and why it is not verified (None when it is)."""

    webhook: Webhook
    reason: str | None
    status: int | None = None
    elapsed_s: float = 0.0

    @property
    def verified(self) -> bool:
        return self.reason is None

    @property
    def line(self) -> str:
        """What happened, in one line: `verified`, or `not verified: <the reason>`."""
        return "verified" if self.reason is None else f"not verified: {self.reason}"


async def verify(store: WebhookStore, sender: Sender, webhook: Webhook) -> VerifyResult:
    """Send the VERIFY challenge to the webhook's callback URL and store whether the answer was right."""
    key = await store.signing_key(webhook.app_id)
    if key is None:
        return await _stored(store, webhook, VerifyResult(webhook, NO_KEY))
    challenge = secrets.token_hex(32)
    payload = verify_payload(
        webhook,
        event_id=str(uuid.uuid4()),
        challenge=challenge,
        delivery_id=str(uuid.uuid4()),
        delivered_at=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    )
    sent = await sender.post(webhook.callback_url, json.dumps(payload).encode(), {})
    reason = sent.error if sent.error is not None else _answer_problem(key, challenge, sent.body)
    return await _stored(store, webhook, VerifyResult(webhook, reason, sent.status, sent.elapsed_s))


async def _stored(store: WebhookStore, webhook: Webhook, result: VerifyResult) -> VerifyResult:
    """The result with the webhook as stored: `verified` set, and the outcome kept."""
    stored = await store.set_verified(webhook, result.verified)
    outcome = VerifyOutcome(result.verified, result.reason, int(time.time() * 1000), result.status)
    await store.record_verify(stored, outcome)
    return VerifyResult(stored, result.reason, result.status, result.elapsed_s)


def _answer_problem(key: str, challenge: str, body: bytes) -> str | None:
    """None for the right answer; else what is wrong with it, without echoing it (the body is the endpoint's)."""
    try:
        answer = json.loads(body)
    except ValueError:
        return f"{WRONG_ANSWER} (the answer is not JSON)"
    if not isinstance(answer, dict) or not isinstance(answer.get("challenge"), str):
        return f'{WRONG_ANSWER} (expected {{"challenge": "<hex HMAC-SHA256 of the challenge>"}})'
    if not verify_answer_ok(key, challenge, answer):
        return f"{WRONG_ANSWER} (not the HMAC-SHA256 of the challenge keyed by the app's management token)"
    return None
