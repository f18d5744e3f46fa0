"""The FastAPI application: routes, offline /docs, and the lifespan that owns every resource."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from ispbx import __version__
from ispbx.api import endpoints, events, history, manage, meta, metrics, system
from ispbx.api.dependencies import BEARER_SCHEME
from ispbx.api.errors import ApiError, api_error_handler, method_not_allowed_handler
from ispbx.api.ui import mount_ui
from ispbx.metrics.exporter import MetricsExporter
from ispbx.metrics.http import HttpMetricsMiddleware, HttpStats
from ispbx.pbx.detail import DetailFields, load_detail_ini
from ispbx.services import Services
from ispbx.settings import Settings


def create_app(settings: Settings, fields: DetailFields | None = None) -> FastAPI:
    """The app; ``fields`` is pjsip_detail.ini already loaded (read here when not given)."""
    detail_fields = fields if fields is not None else load_detail_ini(settings.detail_ini)
    http_stats = HttpStats()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await Services.open(settings, detail_fields)
        app.state.services = services
        app.state.metrics = MetricsExporter(services.pbxes, http_stats)
        await services.start()
        try:
            yield
        finally:
            await services.stop()

    # Swagger UI assets come from the installed fastapi-offline package, not a CDN.
    app: FastAPI = FastAPIOffline(
        title="ISPBX Manager API",
        version=__version__,
        description="Live state and configuration of Asterisk PJSIP extensions.",
        lifespan=lifespan,
        redoc_url=None,
        generate_unique_id_function=operation_id,
        # Starlette's trailing-slash redirect builds an absolute URL from the Host header
        # (Host: evil.example → Location: http://evil.example/health): no such redirects.
        redirect_slashes=False,
    )
    add_bearer_scheme(app)
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(StarletteHTTPException, method_not_allowed_handler)
    app.include_router(system.router)
    app.include_router(meta.router)
    app.include_router(history.router)  # before endpoints: its /{rest:path} catches the rest
    app.include_router(manage.router)
    app.include_router(endpoints.router)
    app.include_router(events.router)
    app.include_router(metrics.router)
    mount_ui(app, settings.frontend_dir)
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "If-None-Match",
                "Last-Event-ID",
            ],
            expose_headers=["ETag"],
        )
    app.add_middleware(HttpMetricsMiddleware, stats=http_stats)  # outermost: sees every request
    return app


def operation_id(route: APIRoute) -> str:
    """OpenAPI operation ids are the route functions' names (``list_endpoints``, ``get_endpoint``,
    ``stream_events`` …), so generated clients get stable method names. Every route added later
    (history, management, metrics …) follows the scheme by itself: name its function verb_noun,
    unique across the app (FastAPI warns about a duplicate id)."""
    return route.name


def add_bearer_scheme(app: FastAPI) -> None:
    """Document the bearer token scheme, so /docs has "Authorize" (routes list it as SECURED)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes[BEARER_SCHEME] = {
                "type": "http",
                "scheme": "bearer",
                "description": "an API token (viewer or admin), see ISPBX_API_TOKENS",
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def end_event_streams(app: FastAPI) -> None:
    """Ask every open /events stream to finish, so a shutdown need not wait for browsers."""
    services: Services | None = getattr(app.state, "services", None)
    if services is not None:
        services.close_streams()


class Server(uvicorn.Server):
    """uvicorn's server, telling the app as soon as a shutdown is asked for (event streams would
    otherwise hold the graceful shutdown until its timeout)."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_exit = on_exit
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._on_exit)
        super().handle_exit(sig, frame)
