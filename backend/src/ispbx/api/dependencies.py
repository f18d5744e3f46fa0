"""Typed dependencies: the lifespan-built services, the caller's role, a valid extension.

All are ``async def``: FastAPI runs plain ``def`` dependencies in its thread pool, which costs a
thread hop per dependency on every request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request

from ispbx.api.errors import ExtensionNotFound, Forbidden, MetricsOnly, Unauthorized
from ispbx.pbx.pbx import Pbx
from ispbx.pbx.readmodel import ReadModel, valid_extension
from ispbx.security.tokens import Principal
from ispbx.services import Services

# Documented in OpenAPI by ispbx.app (the scheme) and on each protected route (SECURED); the header
# is read here directly rather than through fastapi.security.HTTPBearer, one dependency less per
# request on the hottest routes.
BEARER_SCHEME = "BearerToken"
SECURED: dict[str, Any] = {"security": [{BEARER_SCHEME: []}]}


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


@dataclass(frozen=True)
class Caller:
    """An authenticated request: the services and the caller's role, in one dependency (each
    dependency costs FastAPI work on every request, and the endpoint routes are hot)."""

    services: Services
    principal: Principal

    @property
    def pbx(self) -> Pbx:
        return self.services.pbx

    @property
    def readmodel(self) -> ReadModel:
        return self.services.pbx.readmodel


def _authenticated(request: Request, token: str | None) -> Caller:
    services: Services = request.app.state.services
    if not services.settings.auth:
        return Caller(services, Principal("admin", "admin (auth off)"))
    principal = services.tokens.principal_of(token) if token else None
    if principal is None:
        raise Unauthorized()
    return Caller(services, principal)


def _caller(request: Request, token: str | None) -> Caller:
    caller = _authenticated(request, token)
    if not caller.principal.reads_data:
        raise MetricsOnly()
    return caller


async def require_token(request: Request) -> Caller:
    return _caller(request, bearer_token(request))


async def require_token_or_query(
    request: Request,
    token: Annotated[
        str | None, Query(description="the API token, for EventSource (cannot send headers)")
    ] = None,
) -> Caller:
    """For the event stream only: browsers' EventSource cannot send an Authorization header."""
    return _caller(request, bearer_token(request) or token)


async def require_admin(request: Request) -> Caller:
    """An admin token, or 401 (no/unknown token) / 403 (a viewer's)."""
    caller = _caller(request, bearer_token(request))
    if caller.principal.role != "admin":
        raise Forbidden()
    return caller


async def require_metrics_token(request: Request) -> Caller:
    """GET /metrics: any role (metrics, viewer, admin), as Prometheus sends it (bearer)."""
    return _authenticated(request, bearer_token(request))


CallerDep = Annotated[Caller, Depends(require_token)]
AdminDep = Annotated[Caller, Depends(require_admin)]
MetricsCallerDep = Annotated[Caller, Depends(require_metrics_token)]
StreamCallerDep = Annotated[Caller, Depends(require_token_or_query)]


async def extension_param(
    extension: Annotated[str, Path(description="the endpoint (extension) name, e.g. 101")],
) -> str:
    """Refuses hostile names with the same 404 before any AMI or file access."""
    if not valid_extension(extension):
        raise ExtensionNotFound()
    return extension


ExtensionDep = Annotated[str, Depends(extension_param)]
