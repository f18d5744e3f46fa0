"""The one place where bodies leave the service: what a caller may see of them.

Admins see everything pjsip_detail.ini selects; viewers and the public (``/health``) get secrets
masked. Every JSON route, the pre-serialised endpoint list and every ``/events`` message go
through :func:`visible_to`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Response

from ispbx.pbx.snapshot import dumps
from ispbx.security.redact import redact
from ispbx.security.tokens import Principal


def visible_to(principal: Principal | None, body: Mapping[str, Any]) -> Any:
    """``body`` as ``principal`` may see it (``None``: an anonymous caller of a public route)."""
    if principal is not None and principal.sees_secrets:
        return body
    return redact(dict(body))


def variant_of(principal: Principal) -> str:
    """The cache key of what ``principal`` sees, for bodies serialised once per change."""
    return "admin" if principal.sees_secrets else "viewer"


def json_response(
    body: Mapping[str, Any],
    principal: Principal | None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Serialise directly: bodies are built to their response model already (tested), so
    FastAPI's validate-and-re-encode pass would only add latency."""
    return Response(
        dumps(visible_to(principal, body)),
        status_code=status_code,
        media_type="application/json",
        headers=dict(headers) if headers else None,
    )
