"""The endpoint routes: thin — ask the views, map "not found"/"no config" to HTTP."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from ispbx.api.dependencies import ViewsDep
from ispbx.api.errors import ConfigReadError, ExtensionNotFound
from ispbx.api.schemas import Endpoint, EndpointConfig, EndpointList, ErrorDetail
from ispbx.views import ConfigUnavailable

router = APIRouter(prefix="/endpoints", tags=["endpoints"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorDetail, "description": "Extension not found"}
}
Extension = Annotated[str, Path(description="the endpoint (extension) name, e.g. 101")]


@router.get("", response_model=EndpointList)
async def list_endpoints(
    views: ViewsDep,
    status: Annotated[Literal["online", "offline"] | None, Query()] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="substring of extension or caller ID")
    ] = None,
) -> Any:
    """Every endpoint loaded in Asterisk or defined in pjsip.conf, in natural order."""
    return views.list_endpoints(status=status, q=q)


@router.get("/{extension}", response_model=Endpoint, responses=NOT_FOUND)
async def get_endpoint(extension: Extension, views: ViewsDep) -> Any:
    body = await views.endpoint(extension)
    if body is None:
        raise ExtensionNotFound()
    return body


@router.get(
    "/{extension}/config",
    response_model=EndpointConfig,
    responses={
        **NOT_FOUND,
        500: {"model": ErrorDetail, "description": "no good parse of pjsip.conf"},
    },
)
async def get_endpoint_config(extension: Extension, views: ViewsDep) -> Any:
    """The endpoint section's effective options, as Asterisk applies them."""
    try:
        body = views.endpoint_config(extension)
    except ConfigUnavailable:
        raise ConfigReadError() from None
    if body is None:
        raise ExtensionNotFound()
    return body
