"""One POST to a webhook endpoint, safely: the URL checked again against the allowed hosts, the whole exchange under
one deadline, redirects not followed, the answer read only up to a limit. Every outcome is a `Sent`, never an
exception: a delivery worker must not crash on what an endpoint does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx

from schemas.webhooks import WebhookError, callback_url

USER_AGENT = "fleetgate-webhooks/1"


@dataclass(frozen=True, slots=True)
class Sent:
    """What one POST came to: the status (None when no answer came), the start of the answer, how long it took,
    and what went wrong in one line (None for a 2xx)."""

    status: int | None
    body: bytes
    elapsed_s: float
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


class Sender:
    """POSTs to webhook endpoints over one pooled HTTP client (a process has one; `close()` it at the end)."""

    def __init__(self, *, timeout_s: float, max_response_bytes: int, allowed_hosts: Sequence[str] = ()) -> None:
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes
        self.allowed_hosts = tuple(allowed_hosts)
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
            headers={"User-Agent": USER_AGENT},
            trust_env=False,  # a proxy from the environment must not see (or redirect) signed payloads
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Sent:
        started = time.perf_counter()
        try:
            callback_url(url, self.allowed_hosts)
        except WebhookError as error:
            return Sent(None, b"", 0.0, f"refused: {error}")
        try:
            async with asyncio.timeout(self.timeout_s):
                status, answer = await self._exchange(url, body, headers)
        except TimeoutError:
            return Sent(None, b"", time.perf_counter() - started, f"timed out after {self.timeout_s:g} s")
        except httpx.HTTPError as error:
            return Sent(None, b"", time.perf_counter() - started, _describe(error))
        elapsed = time.perf_counter() - started
        if 200 <= status < 300:
            return Sent(status, answer, elapsed, None)
        what = "a redirect (not followed)" if 300 <= status < 400 else "not 2xx"
        return Sent(status, answer, elapsed, f"HTTP {status}: {what}")

    async def _exchange(self, url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        request = self._client.build_request(
            "POST", url, content=body, headers={"Content-Type": "application/json", **headers}
        )
        response = await self._client.send(request, stream=True)
        try:
            answer = bytearray()
            async for chunk in response.aiter_raw():
                answer += chunk
                if len(answer) >= self.max_response_bytes:
                    del answer[self.max_response_bytes :]
                    break
            return response.status_code, bytes(answer)
        finally:
            await response.aclose()


def _describe(error: httpx.HTTPError) -> str:
    """One line for a network failure: its kind and the cause, without the URL's query (it may carry secrets)."""
    kind = type(error).__name__
    cause = str(error).strip() or (str(error.__cause__) if error.__cause__ else "")
    return f"{kind}: {cause}"[:300] if cause else kind
