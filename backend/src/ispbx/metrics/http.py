"""HTTP request counts and handling times, by route template, method and status.

:class:`HttpMetricsMiddleware` is a pure ASGI middleware (Starlette's BaseHTTPMiddleware would
put every request through an extra task and memory stream). It reads the route the router
matched (``scope["route"]``, set by Starlette), so ``/endpoints/101`` is counted as
``/endpoints/{extension}`` and a hostile client cannot add series: an unmatched path is
``unmatched``, an unusual method ``other``. A server-sent event stream is measured to its first
byte (its response start), not to its end hours later.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ispbx.metrics.histogram import HTTP_BUCKETS, Buckets

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
EVENT_STREAM = b"text/event-stream"

Labels = tuple[str, str, str]  # route, method, status


class HttpStats:
    def __init__(self) -> None:
        self._requests: dict[Labels, Buckets] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        labels = (route, method if method in METHODS else "other", str(status))
        buckets = self._requests.get(labels)
        if buckets is None:
            buckets = self._requests[labels] = Buckets(HTTP_BUCKETS)
        buckets.observe(seconds)

    def families(self) -> Iterator[Metric]:
        names = ["route", "method", "status"]
        requests = CounterMetricFamily(
            "ispbx_http_requests",
            "HTTP requests by route template, method and status",
            labels=names,
        )
        duration = HistogramMetricFamily(
            "ispbx_http_request_duration_seconds",
            "Time from the request to the last byte of the response (to the first byte for "
            "event streams), by route template, method and status",
            labels=names,
        )
        for labels, buckets in sorted(self._requests.items()):
            requests.add_metric(list(labels), buckets.count)
            duration.add_metric(list(labels), buckets.cumulative(), buckets.sum)
        yield requests
        yield duration


def route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def is_event_stream(message: Message) -> bool:
    return any(
        name.lower() == b"content-type" and value.startswith(EVENT_STREAM)
        for name, value in message.get("headers", ())
    )


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp, stats: HttpStats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception the app did not answer
        done = False

        async def send_counted(message: Message) -> None:
            nonlocal status, done
            if message["type"] == "http.response.start":
                status = message["status"]
                if is_event_stream(message):
                    done = True
                    self._record(scope, status, started)
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            if not done:
                self._record(scope, status, started)

    def _record(self, scope: Scope, status: int, started: float) -> None:
        self.stats.observe(route_of(scope), scope["method"], status, time.perf_counter() - started)
