"""One error type for the API, rendered by one handler."""

from __future__ import annotations

from typing import Any, ClassVar

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


class ConfigReadError(ApiError):
    status_code = 500
    detail = "Error reading PJSIP configuration"


async def api_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)
