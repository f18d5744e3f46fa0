"""The dashboard's static files at /ui/, with a strict Content-Security-Policy."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import URL
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)
UI_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


class SecurityHeaders:
    """Adds the dashboard's security headers to every response of the wrapped app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend((k.encode(), v.encode()) for k, v in UI_HEADERS.items())
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class UiFiles(StaticFiles):
    """StaticFiles whose 404s are plain responses, so they get the security headers too, and whose
    directory redirects are relative (StaticFiles builds them from the Host header)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            response = await super().get_response(path, scope)
        except HTTPException as exc:
            return PlainTextResponse(str(exc.detail), status_code=exc.status_code)
        location = response.headers.get("location")
        if location is not None:
            url = URL(location)
            response.headers["location"] = url.path + (f"?{url.query}" if url.query else "")
        return response


def mount_ui(app: FastAPI, directory: Path) -> bool:
    """Serve ``directory`` at /ui/; False (and a warning) when it holds no dashboard."""
    if not (directory / "index.html").is_file():
        log.warning("no dashboard in %s (ISPBX_FRONTEND_DIR): /ui/ is not served", directory)
        return False

    @app.get("/ui", include_in_schema=False)
    async def ui_redirect() -> RedirectResponse:
        return RedirectResponse("/ui/")

    app.mount("/ui", SecurityHeaders(UiFiles(directory=directory, html=True)), name="ui")
    return True
