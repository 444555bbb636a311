"""VERIFY on a real redis-server against the test receiver: a right answer verifies the webhook, a wrong one or a
failing endpoint leaves it unverified with the reason; and the official SDK's challenge hash is what fleetgate
accepts."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import smartcar
from redis.asyncio import Redis

from schemas.application import AppMode
from schemas.webhooks import Webhook, verify_answer_ok
from services.keyspace import Keys
from services.registry import AppStore
from services.webhooks.sender import Sender
from services.webhooks.store import WebhookStore
from services.webhooks.verify import WRONG_ANSWER, verify
from tests.webhooks.receiver import receiving

pytestmark = pytest.mark.redis
SOC = "tractionbattery-stateofcharge"
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@dataclass
class Setup:
    store: WebhookStore
    sender: Sender
    amt: str

    async def webhook(self, app_id: str, url: str) -> Webhook:
        return await self.store.create(
            app_id, management_token=self.amt, name="Battery", callback_url=url, signals=[SOC]
        )


@pytest.fixture
async def setup(redis: Redis, keys: Keys) -> AsyncIterator[tuple[Setup, str]]:
    created = await AppStore(redis, keys).create("Fleet", ["https://app.example/cb"], AppMode.TEST)
    sender = Sender(timeout_s=2.0, max_response_bytes=4096)
    try:
        yield Setup(WebhookStore(redis, keys), sender, created.management_token), created.app.id
    finally:
        await sender.close()


async def test_a_right_answer_verifies_the_webhook(setup: tuple[Setup, str]) -> None:
    """The endpoint gets one unsigned VERIFY with a fresh challenge and ids and an ISO deliveredAt; its right
    answer stores `verified` true; a second VERIFY has a new challenge, event id and delivery id."""
    env, app_id = setup
    async with receiving(env.amt) as receiver:
        webhook = await env.webhook(app_id, f"{receiver.url}/hooks")
        assert not webhook.verified
        result = await verify(env.store, env.sender, webhook)
        again = await verify(env.store, env.sender, result.webhook)
    assert (result.verified, result.reason, result.status, result.line) == (True, None, 200, "verified")
    assert again.verified
    assert (await env.store.get(webhook.id)).verified
    first, second = receiver.verifies
    assert first.path == "/hooks"
    assert first.signature is None  # VERIFY is not signed, as Smartcar's
    assert first.body["eventType"] == "VERIFY"
    assert ISO_MS.match(first.body["meta"]["deliveredAt"])
    meta = {k: first.body["meta"][k] for k in ("version", "webhookId", "webhookName")}
    assert meta == {"version": "4.0", "webhookId": webhook.id, "webhookName": "Battery"}
    for field in (("data", "challenge"), ("eventId",), ("meta", "deliveryId")):
        values = [_at(r.body, field) for r in (first, second)]
        assert values[0] != values[1], field
    assert receiver.events == []


async def test_a_wrong_answer_leaves_the_webhook_unverified(setup: tuple[Setup, str]) -> None:
    """A 2xx whose challenge is not the HMAC keyed by the app's token stores `verified` false, and says so."""
    env, app_id = setup
    async with receiving(env.amt, wrong_challenge=True) as receiver:
        webhook = await env.webhook(app_id, receiver.url)
        result = await verify(env.store, env.sender, webhook)
    assert not result.verified
    assert result.reason is not None
    assert result.reason.startswith(WRONG_ANSWER)
    assert result.line.startswith("not verified: wrong challenge answer")
    assert not (await env.store.get(webhook.id)).verified


async def test_an_endpoint_that_fails_leaves_the_webhook_unverified_with_its_failure(
    setup: tuple[Setup, str],
) -> None:
    """A verified webhook whose endpoint then answers 500, and then is down, is stored unverified each time, with
    the sender's line as the reason (a failed re-verification stops deliveries)."""
    env, app_id = setup
    async with receiving(env.amt) as receiver:
        webhook = (await verify(env.store, env.sender, await env.webhook(app_id, receiver.url))).webhook
        assert webhook.verified
        receiver.answer_verify(500, {"error": "failing on purpose"})
        failed = await verify(env.store, env.sender, webhook)
        assert (failed.verified, failed.status, failed.reason) == (False, 500, "HTTP 500: not 2xx")
        assert not (await env.store.get(webhook.id)).verified
        receiver.answer_verify_right()
        assert (await verify(env.store, env.sender, webhook)).verified
        await receiver.down()
        refused = await verify(env.store, env.sender, webhook)
    assert refused.reason is not None
    assert refused.reason.startswith("ConnectError")
    assert not (await env.store.get(webhook.id)).verified


async def test_answers_that_are_not_a_challenge_are_wrong_answers(setup: tuple[Setup, str]) -> None:
    """A 2xx that is not JSON, or JSON without a `challenge` string, is a wrong answer that says which."""
    env, app_id = setup
    async with receiving(env.amt) as receiver:
        webhook = await env.webhook(app_id, receiver.url)
        for answer, problem in ((b"ok", "not JSON"), ({"answer": "x"}, 'expected {"challenge"')):
            receiver.answer_verify(200, answer)
            result = await verify(env.store, env.sender, webhook)
            assert result.reason is not None
            assert result.reason.startswith(WRONG_ANSWER)
            assert problem in result.reason


def test_the_sdks_challenge_hash_is_the_answer_fleetgate_accepts() -> None:
    """`smartcar.hash_challenge(amt, challenge)` is accepted; an answer keyed by another token is not."""
    challenge = "7f3a0c"
    assert verify_answer_ok("amt-1", challenge, {"challenge": smartcar.hash_challenge("amt-1", challenge)})
    assert not verify_answer_ok("amt-1", challenge, {"challenge": smartcar.hash_challenge("amt-2", challenge)})
    assert not verify_answer_ok("amt-1", challenge, {"challenge": 42})


def _at(body: dict[str, object], path: tuple[str, ...]) -> object:
    found: object = body
    for part in path:
        assert isinstance(found, dict)
        found = found[part]
    return found


async def test_the_last_verify_outcome_is_kept_and_goes_with_the_webhook(setup: tuple[Setup, str]) -> None:
    """Each VERIFY's outcome (verified, reason, HTTP status) replaces the last one kept; delete removes it."""
    env, app_id = setup
    async with receiving(env.amt, wrong_challenge=True) as receiver:
        webhook = await env.webhook(app_id, f"{receiver.url}/hooks")
        assert await env.store.last_verify(webhook.id) is None
        await verify(env.store, env.sender, webhook)
        failed = await env.store.last_verify(webhook.id)
        receiver.wrong_challenge = False
        await verify(env.store, env.sender, webhook)
        passed = await env.store.last_verify(webhook.id)
    assert failed is not None
    assert passed is not None
    assert (failed.verified, failed.http_status) == (False, 200)
    assert failed.reason is not None
    assert failed.reason.startswith(WRONG_ANSWER)
    assert (passed.verified, passed.reason, passed.http_status) == (True, None, 200)
    assert passed.at >= failed.at
    assert await env.store.delete(webhook.id)
    assert await env.store.last_verify(webhook.id) is None
