"""Typed dependencies: routes reach the lifespan-built services through these."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ispbx.services import Services
from ispbx.views import EndpointViews


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_views(services: Annotated[Services, Depends(get_services)]) -> EndpointViews:
    return services.views


ServicesDep = Annotated[Services, Depends(get_services)]
ViewsDep = Annotated[EndpointViews, Depends(get_views)]
