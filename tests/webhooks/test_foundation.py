"""The webhook foundation on a real redis-server and a real receiver: a definition stored and read back, the
signature the official SDK verifies, and the sender's answers to every kind of endpoint failure."""

from __future__ import annotations

import pytest
import smartcar
from redis.asyncio import Redis

from schemas.application import AppMode
from schemas.webhooks import Triggers, WebhookError, callback_url, sign
from services.keyspace import Keys
from services.registry import AppStore
from services.webhooks.sender import Sender
from services.webhooks.store import WebhookStore, WebhookStoreError
from tests.webhooks.receiver import receiving

pytestmark = pytest.mark.redis
SOC = "tractionbattery-stateofcharge"


async def test_a_webhook_is_stored_with_its_app_and_signed_with_its_management_token(redis: Redis, keys: Keys) -> None:
    """Create needs the app's own management token; the stored definition reads back equal; the signature of a
    body with that token is what the SDK's verify_payload accepts; deleting the last webhook drops the key."""
    created = await AppStore(redis, keys).create("Fleet", ["https://app.example/cb"], AppMode.TEST)
    other = await AppStore(redis, keys).create("Other", ["https://other.example/cb"], AppMode.TEST)
    store = WebhookStore(redis, keys)
    with pytest.raises(WebhookStoreError, match="not the management token"):
        await store.create(
            created.app.id,
            management_token=other.management_token,
            name="x",
            callback_url="https://a.example/h",
            signals=[SOC],
        )
    webhook = await store.create(
        created.app.id,
        management_token=created.management_token,
        name="Battery",
        callback_url="https://a.example/h",
        signals=[SOC, SOC],
        triggers=Triggers(schedule_s=60),
    )
    assert webhook.signals == (SOC,)
    assert await store.get(webhook.id) == webhook
    assert [w.id for w in await store.of_app(created.app.id)] == [webhook.id]
    key = await store.signing_key(created.app.id)
    assert key == created.management_token
    body = '{"eventId":"e"}'
    assert smartcar.verify_payload(created.management_token, sign(key, body), body)
    assert await store.delete(webhook.id)
    assert await store.signing_key(created.app.id) is None
    assert await store.find(webhook.id) is None


async def test_a_definition_with_an_unknown_signal_names_it(redis: Redis, keys: Keys) -> None:
    created = await AppStore(redis, keys).create("Fleet", ["https://app.example/cb"], AppMode.TEST)
    with pytest.raises(WebhookStoreError, match="did you mean 'tractionbattery-stateofcharge'"):
        await WebhookStore(redis, keys).create(
            created.app.id,
            management_token=created.management_token,
            name="x",
            callback_url="https://a.example/h",
            signals=["tractionbattery-stateofcharg"],
        )


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://a.example/h", "http:// or https://"),
        ("https://user:pw@a.example/h", "user name or password"),
        ("https:///h", "needs a host"),
        ("https://a.example/h#x", "fragment"),
        ("https://a.example:99999/h", "not a URL"),
        ("https://b.example/h", "not among the allowed"),
    ],
)
def test_callback_urls_that_fleetgate_refuses(url: str, problem: str) -> None:
    with pytest.raises(WebhookError, match=problem):
        callback_url(url, ["a.example"])


async def test_the_sender_reports_every_failure_as_a_line_and_never_raises() -> None:
    """2xx is ok; a 500, a hang past the timeout, a closed connection, a refused one and a host outside the list
    are each a failure with its reason, and the answer is read only up to the limit."""
    async with receiving("amt") as receiver:
        sender = Sender(timeout_s=0.5, max_response_bytes=300, allowed_hosts=["127.0.0.1"])
        body = b'{"eventId":"e1","eventType":"VEHICLE_STATE"}'
        headers = {"SC-Signature": sign("amt", body)}
        try:
            assert (await sender.post(receiver.url, body, headers)).ok
            receiver.fail(500, times=1)
            failed = await sender.post(receiver.url, body, headers)
            assert (failed.status, failed.error) == (500, "HTTP 500: not 2xx")
            receiver.hang(2.0)
            hung = await sender.post(receiver.url, body, headers)
            assert hung.error == "timed out after 0.5 s"
            assert hung.status is None
            receiver.heal()
            await receiver.close_connections()
            closed = await sender.post(receiver.url, body, headers)
            assert closed.status is None
            assert closed.error is not None
            assert "RemoteProtocolError" in closed.error
            await receiver.down()
            refused = await sender.post(receiver.url, body, headers)
            assert refused.error is not None
            assert refused.error.startswith("ConnectError")
            outside = await sender.post("http://localhost:1/x", body, headers)
            assert outside.error is not None
            assert outside.error.startswith("refused: 'localhost' is not among")
        finally:
            await sender.close()
        assert receiver.event_ids() == ["e1"]
