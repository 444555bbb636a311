"""Creating and verifying an application's webhooks, as `fleetgate webhooks` and the dashboard's Webhooks pages do
it: the callback URLs checked against the settings' allowed hosts, the definition stored with the app's management
token (the signing key), then VERIFY through a sender of the settings (timeout, response limit, allowed hosts).

One place, so that the command line and the dashboard cannot come to accept different webhooks.
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.webhooks import Triggers, Webhook, WebhookError, callback_url
from services.settings import Settings
from services.webhooks.sender import Sender
from services.webhooks.store import WebhookStore, WebhookStoreError
from services.webhooks.verify import VerifyResult, verify


def sender_for(settings: Settings) -> Sender:
    return Sender(
        timeout_s=settings.webhook_timeout_s,
        max_response_bytes=settings.webhook_max_response_bytes,
        allowed_hosts=settings.webhook_hosts,
    )


def allowed_url(url: str, settings: Settings) -> str:
    """The URL if fleetgate may POST to it (FLEETGATE_WEBHOOK_ALLOWED_HOSTS included); WebhookStoreError naming
    what is wrong otherwise."""
    try:
        return callback_url(url, settings.webhook_hosts)
    except WebhookError as error:
        raise WebhookStoreError(str(error)) from None


async def verify_now(store: WebhookStore, settings: Settings, webhook: Webhook) -> VerifyResult:
    """VERIFY the webhook once, over a sender opened for it (VERIFY is rare: no pool is kept)."""
    sender = sender_for(settings)
    try:
        return await verify(store, sender, webhook)
    finally:
        await sender.close()


async def create_and_verify(
    store: WebhookStore,
    settings: Settings,
    app_id: str,
    *,
    management_token: str,
    name: str,
    url: str,
    signals: Sequence[str],
    triggers: Triggers,
    error_url: str | None = None,
) -> VerifyResult:
    """Store a new webhook of `app_id` (WebhookStoreError for a refused URL, an unknown signal, a token that is not
    the app's), then VERIFY it: the result says whether it verified and, if not, why. An unverified webhook is
    still created (its endpoint can be fixed and verified again)."""
    allowed_url(url, settings)
    if error_url is not None:
        allowed_url(error_url, settings)
    webhook = await store.create(
        app_id,
        management_token=management_token,
        name=name,
        callback_url=url,
        signals=signals,
        triggers=triggers,
        error_callback_url=error_url,
    )
    return await verify_now(store, settings, webhook)
