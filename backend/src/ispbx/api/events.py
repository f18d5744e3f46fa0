"""GET /events: server-sent events with endpoint changes, for the dashboard.

Each event has an id; a browser that reconnects with ``Last-Event-ID`` gets what it missed, or a
``reset`` event (refetch /endpoints) when that is no longer kept. Events: ``endpoint`` (a row of
GET /endpoints that changed), ``removed`` (``{"extension"}``), ``status`` (the envelope:
ami_connected, stale_since, config_error), ``reset``. A comment line every 15 s keeps proxies open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse

from ispbx.api.dependencies import SECURED, StreamCallerDep
from ispbx.api.errors import TooManyStreams
from ispbx.api.output import visible_to
from ispbx.api.schemas import ErrorDetail
from ispbx.pbx.snapshot import FeedEvent, ListPublisher
from ispbx.security.tokens import Principal

router = APIRouter(tags=["events"])
KEEPALIVE = 15.0
EVENT_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits only: "²".isdigit() is True


def sse(event_id: int, kind: str, data: Any) -> bytes:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"id: {event_id}\nevent: {kind}\ndata: {payload}\n\n".encode()


def render(event: FeedEvent, principal: Principal) -> bytes:
    return sse(event.id, event.kind, visible_to(principal, event.data))


async def stream(
    publisher: ListPublisher, principal: Principal, last_id: int | None
) -> AsyncIterator[bytes]:
    wake, unsubscribe = publisher.subscribe()
    try:
        yield b"retry: 2000\n\n"
        position = publisher.last_id
        missed = publisher.events_after(last_id) if last_id is not None else None
        if missed is None:
            yield sse(position, "reset", {"last_id": position})
        else:
            for event in missed:
                yield render(event, principal)
        while not publisher.closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), KEEPALIVE)
            wake.clear()
            if publisher.closing:
                return
            events = publisher.events_after(position)
            if events is None:
                position = publisher.last_id
                yield sse(position, "reset", {"last_id": position})
                continue
            for event in events:
                yield render(event, principal)
                position = event.id
            if not events:
                yield b": keepalive\n\n"
    finally:
        unsubscribe()


EVENT_TYPES = """Server-sent events (`text/event-stream`), each with an `id:` (send the last one
back in `Last-Event-ID` to resume) and `data:` one JSON object:

- `endpoint`: a row of `GET /endpoints` that changed (`EndpointSummary`);
- `removed`: `{"extension": "…"}`, an endpoint that is gone;
- `status`: the envelope (`ami_connected`, `synced`, `stale_since`, `config_error`) changed;
- `reset`: `{"last_id": N}`, the events missed are no longer kept: fetch `GET /endpoints` again.

A `: keepalive` comment line comes every 15 s."""
STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": EVENT_TYPES,
        "content": {
            "text/event-stream": {
                "schema": {"type": "string"},
                "example": 'id: 17\nevent: endpoint\ndata: {"extension":"101", …}\n\n',
            }
        },
    },
    401: {"model": ErrorDetail, "description": "no or unknown API token"},
    503: {
        "model": ErrorDetail,
        "description": "too many streams open (ISPBX_HTTP_MAX_EVENT_STREAMS); see Retry-After",
    },
}


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses=STREAM_RESPONSES,
    openapi_extra=SECURED,
)
async def stream_events(
    caller: StreamCallerDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Endpoint changes as server-sent events (token in the header, or ``?token=`` here only)."""
    last_id = int(last_event_id) if last_event_id and EVENT_ID.fullmatch(last_event_id) else None
    publisher = caller.pbx.publisher
    if publisher.subscriber_count >= caller.services.settings.http_max_event_streams:
        raise TooManyStreams()
    return StreamingResponse(
        stream(publisher, caller.principal, last_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
