"""`fleetgate webhooks`: an application's webhook definitions (create, list, show, verify, delete).

`create` stores the definition with the app's management token (the key every delivery is signed with, so it is
kept; docs/webhooks.md) and then runs VERIFY against the callback URL; a webhook that is not verified gets
nothing until `fleetgate webhooks verify ID` succeeds. The management token is read from `--management-token` or
$FLEETGATE_MANAGEMENT_TOKEN and never printed. `verify` exits 1 when the endpoint did not prove itself; bad input
is one line on stderr and exit 2, as everywhere.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from fleetgate._output import console, fail, print_json, reporting_errors, table
from fleetgate._registry import RedisUrlOption, existing_app, run, settings_for
from schemas.webhooks import Triggers, Webhook
from services.registry import Registry
from services.webhooks.manage import create_and_verify, verify_now
from services.webhooks.store import VerifyOutcome, WebhookStore
from services.webhooks.verify import VerifyResult

NOT_VERIFIED = 1
"""`verify`'s exit code when the endpoint did not answer the challenge right (2 stays for bad input)."""
TOKEN_ENV = "FLEETGATE_MANAGEMENT_TOKEN"

app = typer.Typer(
    help="Webhooks: signed POSTs of vehicle data and errors to an app's endpoint (docs/webhooks.md).",
    no_args_is_help=True,
)
WebhookArgument = Annotated[
    str, typer.Argument(metavar="ID", help="The webhook's id (fleetgate webhooks list).", show_default=False)
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def webhook_json(webhook: Webhook, subscribers: int | None = None) -> dict[str, Any]:
    """A webhook as `--json` prints it: its definition (never the signing key) and, where known, how many vehicles
    are subscribed."""
    shown = webhook.model_dump(mode="json", exclude={"v"})
    return shown if subscribers is None else shown | {"subscribers": subscribers}


def codes(text: str | None) -> list[str]:
    """`a,b, c` as ['a', 'b', 'c'] (empty items dropped)."""
    return [code.strip() for code in (text or "").split(",") if code.strip()]


@app.command("create")
def create_command(
    app_id: Annotated[str, typer.Option("--app", help="The application (its client id).", show_default=False)],
    name: Annotated[str, typer.Option("--name", help="The webhook's name (sent as meta.webhookName).")],
    url: Annotated[str, typer.Option("--url", help="The callback URL: http or https, no user name or password.")],
    signals: Annotated[
        str, typer.Option("--signals", help="Signal codes every event carries, comma-separated (fleetgate catalog).")
    ],
    error_url: Annotated[
        str | None,
        typer.Option("--error-url", help="A separate URL for VEHICLE_ERROR events.", show_default=False),
    ] = None,
    on_change: Annotated[
        str | None,
        typer.Option(
            "--on-change",
            help="The signals whose change makes an event, comma-separated (default: every one of --signals).",
            show_default=False,
        ),
    ] = None,
    schedule: Annotated[
        int | None,
        typer.Option("--schedule", help="Also deliver every this many seconds.", min=1, show_default=False),
    ] = None,
    no_vehicle_errors: Annotated[
        bool, typer.Option("--no-vehicle-errors", help="Send no VEHICLE_ERROR events.")
    ] = False,
    management_token: Annotated[
        str | None,
        typer.Option(
            "--management-token",
            envvar=TOKEN_ENV,
            help=f"The app's management token: deliveries are signed with it (default: ${TOKEN_ENV}).",
            show_default=False,
            show_envvar=False,
        ),
    ] = None,
    as_json: JsonOption = False,
    redis_url: RedisUrlOption = None,
) -> None:
    """Create a webhook, then send it the VERIFY challenge; prints its id and whether it verified (and if not, why)."""
    if not management_token:
        fail(f"the app's management token is needed: --management-token or ${TOKEN_ENV}")
    if not codes(signals):
        fail("--signals names no signal: give the signal codes every event carries (fleetgate catalog)")
    settings = settings_for(redis_url)
    on_change_codes = codes(on_change) if on_change is not None else None
    if on_change is not None and not on_change_codes:
        fail("--on-change names no signal (leave it out to make an event on a change of any of --signals)")

    async def create(registry: Registry) -> VerifyResult:
        await existing_app(registry, app_id)
        triggers = Triggers(
            signal_changed=None if on_change_codes is None else tuple(on_change_codes),
            schedule_s=schedule,
            vehicle_error=not no_vehicle_errors,
        )
        return await create_and_verify(
            WebhookStore(registry.redis, registry.keys),
            settings,
            app_id,
            management_token=management_token,
            name=name,
            url=url,
            signals=codes(signals),
            triggers=triggers,
            error_url=error_url,
        )

    with reporting_errors():
        result = run(redis_url, create)
    if as_json:
        print_json(webhook_json(result.webhook, 0) | {"reason": result.reason})
        return
    typer.echo(f"created webhook {result.webhook.id} ({result.webhook.name}) of app {app_id}")
    typer.echo(_verify_line(result))


def _verify_line(result: VerifyResult) -> str:
    if result.verified:
        return "verified: deliveries will be made to it"
    return f"{result.line}; nothing is delivered to it until `fleetgate webhooks verify {result.webhook.id}` succeeds"


@app.command("list")
def list_command(
    app_id: Annotated[str, typer.Option("--app", help="The application (its client id).", show_default=False)],
    as_json: JsonOption = False,
    redis_url: RedisUrlOption = None,
) -> None:
    """The app's webhooks, oldest first."""

    async def listing(registry: Registry) -> list[tuple[Webhook, int]]:
        store = WebhookStore(registry.redis, registry.keys)
        found = await store.of_app(await existing_app(registry, app_id))
        return [(webhook, len(await store.subscribers(webhook.id))) for webhook in found]

    with reporting_errors():
        found = run(redis_url, listing)
    if as_json:
        print_json([webhook_json(webhook, count) for webhook, count in found])
        return
    if not found:
        typer.echo(f"app {app_id} has no webhook (fleetgate webhooks create)")
        return
    shown = table(f"webhooks of {app_id}", "id", "name", "callback URL", "signals", "verified", "subscribers")
    for webhook, count in found:
        verified_text = "yes" if webhook.verified else "no"
        shown.add_row(
            webhook.id, webhook.name, webhook.callback_url, str(len(webhook.signals)), verified_text, str(count)
        )
    console().print(shown)


@app.command("show")
def show_command(webhook_id: WebhookArgument, as_json: JsonOption = False, redis_url: RedisUrlOption = None) -> None:
    """One webhook: its definition, whether it is verified and how many vehicles are subscribed (never its key)."""

    async def one(registry: Registry) -> tuple[Webhook, int, VerifyOutcome | None]:
        store = WebhookStore(registry.redis, registry.keys)
        webhook = await store.get(webhook_id)
        return webhook, len(await store.subscribers(webhook.id)), await store.last_verify(webhook.id)

    with reporting_errors():
        webhook, count, last = run(redis_url, one)
    shown = webhook_json(webhook, count)
    if as_json:
        print_json(shown)
        return
    triggers = webhook.triggers
    rows = [
        ("id", webhook.id),
        ("app", webhook.app_id),
        ("name", webhook.name),
        ("callback URL", webhook.callback_url),
        ("error callback URL", webhook.error_callback_url or "(the callback URL)"),
        ("signals", ", ".join(webhook.signals)),
        ("on change of", ", ".join(webhook.change_codes)),
        ("schedule", "none" if triggers.schedule_s is None else f"every {triggers.schedule_s} s"),
        ("vehicle errors", "sent" if triggers.vehicle_error else "not sent"),
        ("verified", "yes" if webhook.verified else "no"),
        ("last VERIFY", "never" if last is None else (last.reason or "answered right")),
        ("subscribers", str(count)),
        ("created at (epoch ms)", str(webhook.created_at)),
    ]
    listing = table(f"webhook {webhook.id}", "field", "value")
    for field_name, value in rows:
        listing.add_row(field_name, value)
    console().print(listing)


@app.command("verify")
def verify_command(webhook_id: WebhookArgument, as_json: JsonOption = False, redis_url: RedisUrlOption = None) -> None:
    """Send the VERIFY challenge again; exit 1 when the endpoint did not answer it right (the reason is printed)."""
    settings = settings_for(redis_url)

    async def again(registry: Registry) -> VerifyResult:
        store = WebhookStore(registry.redis, registry.keys)
        return await verify_now(store, settings, await store.get(webhook_id))

    with reporting_errors():
        result = run(redis_url, again)
    if as_json:
        print_json({"id": result.webhook.id, "verified": result.verified, "reason": result.reason})
    else:
        typer.echo(f"webhook {result.webhook.id}: {_verify_line(result)}")
    if not result.verified:
        raise typer.Exit(NOT_VERIFIED)


@app.command("delete")
def delete_command(webhook_id: WebhookArgument, redis_url: RedisUrlOption = None) -> None:
    """Delete a webhook and its subscriptions; its undelivered events are dropped."""

    async def delete(registry: Registry) -> bool:
        return await WebhookStore(registry.redis, registry.keys).delete(webhook_id)

    with reporting_errors():
        deleted = run(redis_url, delete)
    if not deleted:
        fail(f"unknown webhook {webhook_id!r} (fleetgate webhooks list)")
    typer.echo(f"deleted webhook {webhook_id}")
