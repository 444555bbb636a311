"""VERIFY: proving that a webhook's endpoint belongs to the app before anything is delivered to it.

fleetgate POSTs Smartcar's VERIFY event (unsigned, as Smartcar's; a fresh `eventId` and `deliveryId`, an ISO
`deliveredAt`) to the callback URL; the endpoint must answer 2xx with `{"challenge": hex HMAC-SHA256(AMT,
challenge)}`. The outcome is stored as the webhook's `verified` (true or false, so a failed re-verification stops
deliveries) and returned as a `VerifyResult` whose `line` says what happened. Only the callback URL is verified:
the error callback URL, when there is one, belongs to the same app and is reached with the same signatures.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.webhooks import Webhook, verify_answer_ok, verify_payload
from services.webhooks.sender import Sender
from services.webhooks.store import WebhookStore

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
        return VerifyResult(await store.set_verified(webhook, False), NO_KEY)
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
    stored = await store.set_verified(webhook, reason is None)
    return VerifyResult(stored, reason, sent.status, sent.elapsed_s)


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
