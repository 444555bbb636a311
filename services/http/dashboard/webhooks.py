"""The app's webhooks: `/dashboard/apps/{app_id}/webhooks` (docs/webhooks.md).

The list (name, callback URL, signals, triggers in words, verified or not with the last VERIFY's reason, the
number of subscribed vehicles); the New webhook form (webhook_form.py), which creates the webhook and runs VERIFY
through the same code as `fleetgate webhooks create` (services/webhooks/manage.py); one webhook's page with its
definition, Verify again, its subscribers, its delivery log and its dead letters; and Delete, a confirmation page
then a POST. Every form that changes something carries the session's CSRF token. The management token is asked for
on create (it becomes the signing key; the session does not keep it) and never rendered back, nor is the key.
Another app's webhook id answers the dashboard's 404, like an unknown one.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from schemas.catalog import get_catalog
from schemas.webhooks import Webhook
from services.http.dashboard.access import published
from services.http.dashboard.auth import AppScoped, CheckedForm, DashboardNotFoundError, SignedIn
from services.http.dashboard.layout import app_base, page, see
from services.http.dashboard.webhook_form import WebhookDraft, signal_groups
from services.webhooks.log import dead_letters_of, last_deliveries
from services.webhooks.manage import create_and_verify, verify_now
from services.webhooks.store import WebhookStore, WebhookStoreError

router = APIRouter()
ACTIVE = "webhooks"
LOG_ROWS = 50
DEAD_ROWS = 20
WRONG_TOKEN = "That is not this application's management token (the one you sign in with)."
NO_TOKEN = "The management token is needed: every delivery is signed with it, and the session does not keep it."


@router.get("/apps/{app_id}/webhooks")
async def webhook_list(request: Request, signed: AppScoped, deleted: str = "") -> Response:
    store = _store(signed)
    rows = []
    for webhook in await store.of_app(signed.app.id):
        rows.append(
            {
                "webhook": webhook,
                "subscribers": len(await store.subscribers(webhook.id)),
                "last_verify": await store.last_verify(webhook.id),
                "triggers": triggers_in_words(webhook),
            }
        )
    context = {"rows": rows, "deleted": deleted == "1", "when": when}
    return page(request, signed, "webhooks.html", context, active=ACTIVE, title="Webhooks")


@router.get("/apps/{app_id}/webhooks/new")
async def new_form(request: Request, signed: AppScoped) -> Response:
    return await _form_page(request, signed, WebhookDraft(), {})


@router.post("/apps/{app_id}/webhooks")
async def create(request: Request, signed: AppScoped, form: CheckedForm) -> Response:
    """Create the webhook and VERIFY it, then its page says how VERIFY went; or the form again, each problem
    beside its field."""
    draft = WebhookDraft.from_fields(form.multi_items())
    problems = draft.problems(signed.context.settings.webhook_hosts)
    token = form.get("token")
    token = token.strip() if isinstance(token, str) else ""
    if not token:
        problems["token"] = NO_TOKEN
    elif (owner := await signed.context.apps.app_of_management_token(token)) is None or owner.id != signed.app.id:
        problems["token"] = WRONG_TOKEN
    if problems:
        return await _form_page(request, signed, draft, problems, status_code=400)
    try:
        result = await create_and_verify(
            _store(signed),
            signed.context.settings,
            signed.app.id,
            management_token=token,
            name=draft.name,
            url=draft.url,
            signals=draft.signals,
            triggers=draft.triggers(),
            error_url=draft.error_url or None,
        )
    except WebhookStoreError as error:  # what the form's own checks did not catch: said at the top
        return await _form_page(request, signed, draft, {"form": f"Nothing was created: {error}."}, status_code=400)
    return see(f"{_url(signed, result.webhook.id)}?created=1")


@router.get("/apps/{app_id}/webhooks/{webhook_id}")
async def webhook_view(
    request: Request, signed: AppScoped, webhook_id: str, created: str = "", checked: str = ""
) -> Response:
    webhook = await _own_webhook(signed, webhook_id)
    store, context = _store(signed), signed.context
    subscribers = await store.subscribers(webhook.id)
    dead, dead_more = await dead_letters_of(context.redis, context.registry.keys, webhook.id, limit=DEAD_ROWS)
    shown = {
        "webhook": webhook,
        "signals": [{"code": c, "name": get_catalog().signal(c).name} for c in webhook.signals],
        "triggers": triggers_in_words(webhook),
        "last_verify": await store.last_verify(webhook.id),
        "outcome": "created" if created == "1" else "checked" if checked == "1" else None,
        "subscribers": sorted(subscribers.items()),
        "deliveries": await last_deliveries(context.redis, context.registry.keys, webhook.id, LOG_ROWS),
        "log_rows": LOG_ROWS,
        "dead": dead,
        "dead_more": dead_more,
        "when": when,
    }
    return page(request, signed, "webhook.html", shown, active=ACTIVE, title=f"Webhook {webhook.name}")


@router.post("/apps/{app_id}/webhooks/{webhook_id}/verify")
async def verify_again(signed: AppScoped, webhook_id: str, form: CheckedForm) -> Response:
    del form  # checked: it carries the session's CSRF token
    webhook = await _own_webhook(signed, webhook_id)
    await verify_now(_store(signed), signed.context.settings, webhook)
    return see(f"{_url(signed, webhook.id)}?checked=1")


@router.get("/apps/{app_id}/webhooks/{webhook_id}/delete")
async def delete_confirm(request: Request, signed: AppScoped, webhook_id: str) -> Response:
    """The confirmation step: what deleting means, and the form that does it."""
    webhook = await _own_webhook(signed, webhook_id)
    context = {"webhook": webhook, "subscribers": len(await _store(signed).subscribers(webhook.id))}
    return page(request, signed, "webhook_delete.html", context, active=ACTIVE, title=f"Delete {webhook.name}?")


@router.post("/apps/{app_id}/webhooks/{webhook_id}/delete")
async def delete(signed: AppScoped, webhook_id: str, form: CheckedForm) -> Response:
    del form  # checked: it carries the session's CSRF token
    webhook = await _own_webhook(signed, webhook_id)
    await _store(signed).delete(webhook.id)  # deleted meanwhile by someone else: the same outcome
    return see(f"{app_base(signed.app.id)}/webhooks?deleted=1")


def triggers_in_words(webhook: Webhook) -> list[str]:
    """What makes an event, in words, e.g. ["when any of its 3 signals changes", "every 5 min", "vehicle errors"]."""
    return (
        [_on_change(webhook)]
        + ([] if webhook.triggers.schedule_s is None else [f"every {_period(webhook.triggers.schedule_s)}"])
        + ["vehicle errors" if webhook.triggers.vehicle_error else "no vehicle errors"]
    )


def _on_change(webhook: Webhook) -> str:
    changing = webhook.change_codes
    if not changing:
        return "never on a change"
    if changing == webhook.signals:
        return f"when any of its {len(changing)} signals changes" if len(changing) > 1 else "when its signal changes"
    if len(changing) <= 2:
        return "when " + " or ".join(get_catalog().signal(code).name for code in changing) + " changes"
    return f"when any of {len(changing)} of its signals changes"


def when(epoch_ms: int | None) -> str:
    """An epoch-ms time as the pages show it (the columns say UTC)."""
    if not epoch_ms:
        return ""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _period(seconds: int) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


async def _form_page(
    request: Request, signed: SignedIn, draft: WebhookDraft, problems: dict[str, str], *, status_code: int = 200
) -> Response:
    config = await published(signed)
    in_access = frozenset(s.code for s in config.signals) if config is not None else frozenset()
    context = {
        "draft": draft,
        "problems": problems,
        "groups": signal_groups(in_access),
        "has_access": config is not None,
        "chosen": set(draft.signals),
    }
    title = "New webhook"
    return page(request, signed, "webhook_new.html", context, active=ACTIVE, title=title, status_code=status_code)


async def _own_webhook(signed: SignedIn, webhook_id: str) -> Webhook:
    """The session's app's webhook; the dashboard's 404 for another app's or an unknown id."""
    webhook = await _store(signed).find(webhook_id)
    if webhook is None or webhook.app_id != signed.app.id:
        raise DashboardNotFoundError
    return webhook


def _store(signed: SignedIn) -> WebhookStore:
    return WebhookStore(signed.context.redis, signed.context.registry.keys)


def _url(signed: SignedIn, webhook_id: str) -> str:
    return f"{app_base(signed.app.id)}/webhooks/{webhook_id}"
