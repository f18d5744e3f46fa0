"""The FastAPI application: routes, offline /docs, and the lifespan that owns every resource."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from ispbx import __version__
from ispbx.api import endpoints, events, system
from ispbx.api.errors import ApiError, api_error_handler
from ispbx.api.ui import mount_ui
from ispbx.services import Services
from ispbx.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = Services.build(settings)
        app.state.services = services
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
    )
    app.add_exception_handler(ApiError, api_error_handler)
    app.include_router(system.router)
    app.include_router(endpoints.router)
    app.include_router(events.router)
    mount_ui(app)
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET"],
            allow_headers=["Authorization", "If-None-Match", "Last-Event-ID"],
            expose_headers=["ETag"],
        )
    return app
