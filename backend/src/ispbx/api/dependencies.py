"""Typed dependencies: the lifespan-built services, the caller's role, a valid extension.

All are ``async def``: FastAPI runs plain ``def`` dependencies in its thread pool, which costs a
thread hop per dependency on every request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ispbx.api.errors import ExtensionNotFound, Unauthorized
from ispbx.auth import Principal
from ispbx.services import Services
from ispbx.views import EndpointViews, valid_extension

bearer = HTTPBearer(auto_error=False, description="an API token (viewer or admin)")


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_views(services: Annotated[Services, Depends(get_services)]) -> EndpointViews:
    return services.views


ServicesDep = Annotated[Services, Depends(get_services)]
ViewsDep = Annotated[EndpointViews, Depends(get_views)]


def _principal(services: Services, token: str | None) -> Principal:
    if services.settings.auth == "off":
        return Principal("admin")
    role = services.tokens.role_of(token) if token else None
    if role is None:
        raise Unauthorized()
    return Principal(role)


async def require_token(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    return _principal(services, credentials.credentials if credentials else None)


async def require_token_or_query(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    token: Annotated[
        str | None, Query(description="the API token, for EventSource (cannot send headers)")
    ] = None,
) -> Principal:
    """For the event stream only: browsers' EventSource cannot send an Authorization header."""
    return _principal(services, credentials.credentials if credentials else token)


PrincipalDep = Annotated[Principal, Depends(require_token)]
StreamPrincipalDep = Annotated[Principal, Depends(require_token_or_query)]


async def extension_param(
    extension: Annotated[str, Path(description="the endpoint (extension) name, e.g. 101")],
) -> str:
    """Refuses hostile names with the same 404 before any AMI or file access."""
    if not valid_extension(extension):
        raise ExtensionNotFound()
    return extension


ExtensionDep = Annotated[str, Depends(extension_param)]
