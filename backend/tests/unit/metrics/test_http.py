"""The HTTP middleware: route templates, bounded labels, event streams timed to their start."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric

from ispbx.metrics.http import HttpMetricsMiddleware, HttpStats
from tests.unit.metrics.rig import Samples, parse


def app_with(stats: HttpStats) -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item}")
    async def item(item: str) -> dict[str, str]:
        return {"item": item}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"data: 1\n\n"
            await asyncio.sleep(0.3)
            yield b"data: 2\n\n"

        return StreamingResponse(body(), media_type="text/event-stream")

    app.add_middleware(HttpMetricsMiddleware, stats=stats)
    return app


def samples_of(stats: HttpStats) -> Samples:
    registry = CollectorRegistry()

    class Collector:
        def collect(self) -> Iterator[Metric]:
            return stats.families()

    registry.register(Collector())
    return parse(generate_latest(registry).decode())


def labelled(
    name: str, route: str, method: str, status: str
) -> tuple[str, frozenset[tuple[str, str]]]:
    return (name, frozenset({"route": route, "method": method, "status": status}.items()))


async def test_requests_are_counted_by_template_and_status() -> None:
    stats = HttpStats()
    transport = httpx.ASGITransport(app=app_with(stats), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        for item in ("a", "b", "c"):
            assert (await client.get(f"/items/{item}")).status_code == 200
        assert (await client.get("/boom")).status_code == 500
        assert (await client.request("PROPFIND", "/items/a")).status_code == 405
        assert (await client.get(f"/random-{id(stats)}")).status_code == 404
    samples = samples_of(stats)
    assert samples[labelled("ispbx_http_requests_total", "/items/{item}", "GET", "200")] == 3
    assert samples[labelled("ispbx_http_requests_total", "/boom", "GET", "500")] == 1
    assert samples[labelled("ispbx_http_requests_total", "/items/{item}", "other", "405")] == 1
    assert samples[labelled("ispbx_http_requests_total", "unmatched", "GET", "404")] == 1
    assert len([name for name, _ in samples if name == "ispbx_http_requests_total"]) == 4


async def test_an_event_stream_is_timed_to_its_first_byte() -> None:
    stats = HttpStats()
    transport = httpx.ASGITransport(app=app_with(stats))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        response = await client.get("/stream")
    assert response.text.count("data:") == 2
    samples = samples_of(stats)
    seconds = samples[labelled("ispbx_http_request_duration_seconds_sum", "/stream", "GET", "200")]
    assert seconds < 0.25  # not the 0.3 s the stream stayed open
    assert (
        samples[labelled("ispbx_http_request_duration_seconds_count", "/stream", "GET", "200")] == 1
    )
