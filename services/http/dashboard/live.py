"""Live decisions: `/dashboard/apps/{app_id}/live`, the app's decisions as they are made.

The page (filters: outcomes, a target, a vehicle id) opens an EventSource on `.../live/events` with the same
parameters: server-sent events from the process's live feed (services/http/live_hub.py), at most one message a
second, `{"window_s", "counts", "rate_per_s", "recent", "dropped"}` (services/http/live_window.py), whatever the
rate of decisions: the browser never gets one message per decision. The stream is a page of the session like any
other (no session: the redirect to sign-in, which an EventSource takes as the end), starts with a `retry:` and
sends a comment when nothing else went out for a while, so that proxies keep it open; it ends after
MAX_STREAM_S (the browser reconnects, and the session is checked again) or when the server shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.types import Receive, Scope, Send

from services.http.dashboard.auth import AppScoped
from services.http.dashboard.layout import HEADERS, page
from services.http.live_hub import LiveHub, Subscriber
from services.http.live_window import OUTCOMES, RECENT, LiveFilter

router = APIRouter()
HEARTBEAT_S = 15.0
MAX_STREAM_S = 600.0
RETRY_MS = 3000
Outcomes = Annotated[list[str] | None, Query(alias="outcome")]


@router.get("/apps/{app_id}/live")
async def live_page(
    request: Request, signed: AppScoped, outcomes: Outcomes = None, target: str = "", vehicle: str = ""
) -> Response:
    try:
        live_filter, error = LiveFilter.parse(outcomes or [], target, vehicle), None
    except ValueError as exc:
        live_filter, error = LiveFilter(), f"Showing every decision instead: {exc}."
    context = {
        "outcomes": OUTCOMES,
        "filter": live_filter,
        "target": target if error is None else "",
        "vehicle": vehicle if error is None else "",
        "error": error,
        "recent_max": RECENT,
    }
    status = 200 if error is None else 400
    return page(request, signed, "live.html", context, active="live", title="Live decisions", status_code=status)


@router.get("/apps/{app_id}/live/events")
async def live_events(signed: AppScoped, outcomes: Outcomes = None, target: str = "", vehicle: str = "") -> Response:
    try:
        live_filter = LiveFilter.parse(outcomes or [], target, vehicle)
    except ValueError as exc:
        return Response(f"{exc}\n", status_code=400, media_type="text/plain", headers=HEADERS)
    return EventStreamResponse(signed.context.live, signed.app.id, live_filter)


class EventStreamResponse(Response):
    """`text/event-stream` of one subscription's messages until it is closed, the client leaves or MAX_STREAM_S
    pass. It subscribes when the response starts and unsubscribes whichever happens (a disconnect is noticed at
    once, not at the next write: a watcher waits for it)."""

    media_type = "text/event-stream"

    def __init__(self, hub: LiveHub, app_id: str, live_filter: LiveFilter) -> None:
        # Like Starlette's StreamingResponse: no body, so no content-length.
        self.status_code, self.background = 200, None
        self.init_headers(HEADERS | {"x-accel-buffering": "no"})  # nginx: pass each event on at once
        self.hub, self.app_id, self.filter = hub, app_id, live_filter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        del scope
        subscriber = await self.hub.subscribe(self.app_id, self.filter)
        watcher = asyncio.create_task(_close_on_disconnect(receive, subscriber))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MAX_STREAM_S
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            await _body(send, f"retry: {RETRY_MS}\n\n".encode())
            while (message := await subscriber.next(HEARTBEAT_S)) is not None and loop.time() < deadline:
                await _body(send, message or b": keep-alive\n\n")
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the client went away while we wrote
            pass
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await self.hub.unsubscribe(subscriber)


async def _close_on_disconnect(receive: Receive, subscriber: Subscriber) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    subscriber.close()


async def _body(send: Send, chunk: bytes) -> None:
    await send({"type": "http.response.body", "body": chunk, "more_body": True})
