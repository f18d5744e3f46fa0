"""One error type for the API, rendered by one handler."""

from __future__ import annotations

from typing import ClassVar

from fastapi import Request
from fastapi.responses import JSONResponse


class ApiError(Exception):
    status_code = 500
    detail = "Internal error"
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.detail)
        if detail:
            self.detail = detail


class ExtensionNotFound(ApiError):
    status_code = 404
    detail = "Extension not found"


class Unauthorized(ApiError):
    status_code = 401
    detail = "Not authenticated"
    headers: ClassVar[dict[str, str] | None] = {"WWW-Authenticate": "Bearer"}


class Forbidden(ApiError):
    status_code = 403
    detail = "This token may only read /metrics"


class ConfigReadError(ApiError):
    status_code = 500
    detail = "Error reading PJSIP configuration"


async def api_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
