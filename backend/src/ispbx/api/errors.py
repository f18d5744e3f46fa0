"""One error type for the API, rendered by one handler."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException


class ApiError(Exception):
    status_code = 500
    detail = "Internal error"
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.detail)
        if detail:
            self.detail = detail

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail}


class ExtensionNotFound(ApiError):
    status_code = 404
    detail = "Extension not found"


class Unauthorized(ApiError):
    status_code = 401
    detail = "Not authenticated"
    headers: ClassVar[dict[str, str] | None] = {"WWW-Authenticate": "Bearer"}


class Forbidden(ApiError):
    status_code = 403
    detail = "This needs an admin token"


class MetricsOnly(Forbidden):
    detail = "This token may only read /metrics"


class InvalidParameter(ApiError):
    """A parameter that has the right form but cannot be used (an unknown event kind, a cursor
    that is not one of ours, a window that ends before it starts): 422 in FastAPI's own shape, so
    clients handle it like any other validation error."""

    status_code = 422

    def __init__(self, detail: str, *, where: tuple[str, ...] = ("query",)) -> None:
        super().__init__(detail)
        self.where = where

    def body(self) -> dict[str, Any]:
        return {"detail": [{"loc": list(self.where), "msg": self.detail, "type": "value_error"}]}


class ServiceUnavailable(ApiError):
    status_code = 503
    detail = "Service unavailable"


class TooManyStreams(ApiError):
    status_code = 503
    detail = "Too many event streams open (ISPBX_HTTP_MAX_EVENT_STREAMS); retry later"
    headers: ClassVar[dict[str, str] | None] = {"Retry-After": "5"}


class ConfigReadError(ApiError):
    status_code = 500
    detail = "Error reading PJSIP configuration"


async def api_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)


async def method_not_allowed_handler(request: Request, exc: Exception) -> Response:
    """405 with every method the path takes in ``Allow``, as the OpenAPI schema documents them
    (Starlette names only the first route that matched the path: GET /endpoints, not POST)."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code != 405:
        return await http_exception_handler(request, exc)
    matching = [
        (pattern, methods)
        for pattern, methods in documented_paths(request.app)
        if pattern.fullmatch(request.url.path)
    ]
    # a literal path (/endpoints/import) names its own resource, not a templated one
    literal = [(p, m) for p, m in matching if "[^/]+" not in p.pattern]
    allowed = sorted({method.upper() for _, methods in literal or matching for method in methods})
    return JSONResponse(
        {"detail": "Method Not Allowed"}, status_code=405, headers={"Allow": ", ".join(allowed)}
    )


def documented_paths(app: Any) -> list[tuple[re.Pattern[str], tuple[str, ...]]]:
    """(path pattern, methods) of every path in the app's OpenAPI schema, built once."""
    cached: list[tuple[re.Pattern[str], tuple[str, ...]]] | None = getattr(
        app.state, "documented_paths", None
    )
    if cached is None:
        cached = [
            (re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path))), tuple(item))
            for path, item in app.openapi()["paths"].items()
        ]
        app.state.documented_paths = cached
    return cached
