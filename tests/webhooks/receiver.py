"""A webhook receiver for the tests: a small ASGI app on a free loopback port, served by uvicorn in the test's own
event loop, that does what a careful app endpoint does (as `wbyoung/smartcar`'s integration does):

- answers VERIFY with `{"challenge": hmac(AMT, challenge)}` (or a wrong one, or an error status, on demand);
- checks `SC-Signature` of every other POST with the SDK's own `smartcar.verify_payload`, and answers 401 to a bad
  one (recorded in `bad_signatures`, never in `events`);
- records every event it accepts (`events`, in arrival order, with the path it came to), and answers 204.

Faults on demand: `fail(status, times)` answers `status` to the next `times` deliveries (None: until `heal()`),
`hang(seconds)` holds each answer that long, `down()` stops listening (connections refused) and `up()` listens
again on the same port, `close_connections()` puts in its place a listener that reads each request and closes the
connection without an answer.

`receiving` runs it in the test's event loop; `receiving_in_thread` on a loop of its own (the browser tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import smartcar
import uvicorn

from services.http.server import bind

Scope = dict[str, Any]
THREAD_TIMEOUT_S = 20.0


@dataclass
class Received:
    path: str
    body: dict[str, Any]
    raw: bytes
    signature: str | None


@dataclass
class Receiver:
    amt: str
    wrong_challenge: bool = False
    events: list[Received] = field(default_factory=list)
    verifies: list[Received] = field(default_factory=list)
    bad_signatures: list[bytes] = field(default_factory=list)
    attempts: int = 0
    """Every POST that reached the app, answered or not (VERIFY included)."""
    _failing: tuple[int, int | None] | None = None
    _verify_answer: tuple[int, Any] | None = None
    _hang_s: float = 0.0
    _port: int = 0
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None
    _closer: asyncio.Server | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def event_ids(self) -> list[str]:
        return [e.body["eventId"] for e in self.events]

    # --- faults

    def fail(self, status: int, times: int | None = None) -> None:
        self._failing = (status, times)

    def answer_verify(self, status: int, answer: Any = None) -> None:
        """Answer VERIFY with `status` and `answer` (JSON, or raw bytes) instead of the challenge's hash, until
        `answer_verify_right()`; `fail` leaves VERIFY alone."""
        self._verify_answer = (status, answer)

    def answer_verify_right(self) -> None:
        self._verify_answer = None

    def hang(self, seconds: float) -> None:
        self._hang_s = seconds

    def heal(self) -> None:
        self._failing = None
        self._hang_s = 0.0

    async def down(self) -> None:
        await self._stop_listening()

    async def up(self) -> None:
        await self._stop_listening()
        await self._listen()

    async def close_connections(self) -> None:
        """Listen on the port with a server that reads a request and closes the connection, answering nothing."""
        await self._stop_listening()

        async def slam(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                await reader.read(65536)
            writer.transport.abort()

        self._closer = await asyncio.start_server(slam, sock=bind("127.0.0.1", self._port))

    # --- the ASGI app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.attempts += 1
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        status, answer = await self._answer(scope["path"], raw, headers.get("sc-signature"))
        body = b"" if answer is None else answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": body})

    async def _answer(self, path: str, raw: bytes, signature: str | None) -> tuple[int, Any]:
        if self._hang_s:
            await asyncio.sleep(self._hang_s)
        body = json.loads(raw)
        if body.get("eventType") == "VERIFY":
            self.verifies.append(Received(path, body, raw, signature))
            if self._verify_answer is not None:
                return self._verify_answer
            challenge = smartcar.hash_challenge(self.amt, body["data"]["challenge"])
            return 200, {"challenge": ("0" * 64) if self.wrong_challenge else challenge}
        if self._failing is not None:
            status, times = self._failing
            if times is not None:
                self._failing = None if times <= 1 else (status, times - 1)
            return status, {"error": "failing on purpose"}
        if signature is None or not smartcar.verify_payload(self.amt, signature, raw.decode()):
            self.bad_signatures.append(raw)
            return 401, {"error": {"code": "invalid_signature"}}
        self.events.append(Received(path, body, raw, signature))
        self.arrived.set()
        return 204, None

    # --- serving

    async def _listen(self) -> None:
        sock = bind("127.0.0.1", self._port)
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(self, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        server = uvicorn.Server(config)
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.005)

    async def _stop_listening(self) -> None:
        if self._closer is not None:
            self._closer.close()
            await self._closer.wait_closed()
            self._closer = None
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            self._server.force_exit = True  # do not wait for a hanging answer
            await self._task
            self._server = self._task = None

    async def wait_for(self, count: int, timeout_s: float = 20.0) -> list[Received]:
        """The first `count` events, waiting up to `timeout_s` for them to arrive; fails the test if they do not."""
        async with asyncio.timeout(timeout_s):
            while len(self.events) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.events[:count]


@contextlib.asynccontextmanager
async def receiving(amt: str, *, wrong_challenge: bool = False) -> AsyncIterator[Receiver]:
    """A running receiver that checks signatures with `amt`; stopped at the end of the block."""
    receiver = Receiver(amt, wrong_challenge=wrong_challenge)
    await receiver.up()
    try:
        yield receiver
    finally:
        await receiver.down()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def receiving_in_thread(amt: str) -> Iterator[Receiver]:
    """A running receiver on its own event loop in a background thread, for tests that cannot share their loop
    (Playwright's sync API keeps one on the main thread); read its lists only once the thing waited for is seen."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="webhook-receiver", daemon=True)
    thread.start()
    receiver = Receiver(amt)
    try:
        asyncio.run_coroutine_threadsafe(receiver.up(), loop).result(THREAD_TIMEOUT_S)
        yield receiver
    finally:
        asyncio.run_coroutine_threadsafe(receiver.down(), loop).result(THREAD_TIMEOUT_S)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(THREAD_TIMEOUT_S)
        loop.close()
