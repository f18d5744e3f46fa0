"""The endpoint routes: thin — ask the read model, map "not found"/"no config" to HTTP; what a
caller sees goes through ``api.output``. GET /endpoints is served from the pre-serialised snapshot
(ETag, gzip)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response

from ispbx.api.dependencies import SECURED, CallerDep, ExtensionDep
from ispbx.api.errors import ConfigReadError, ExtensionNotFound
from ispbx.api.output import json_response, variant_of, visible_to
from ispbx.api.schemas import Endpoint, EndpointConfig, EndpointList, ErrorDetail
from ispbx.manage.importer import export_csv
from ispbx.pbx.readmodel import ConfigUnavailable
from ispbx.pbx.snapshot import Rendered

# Every route takes a CallerDep (the token check) as its FIRST parameter, so a caller without a
# token gets 401 before anything else is looked at; tests/integration/test_security.py checks it.
router = APIRouter(prefix="/endpoints", tags=["endpoints"])
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorDetail, "description": "no or unknown API token"},
}
ERRORS: dict[int | str, dict[str, Any]] = {
    **UNAUTHORIZED,
    404: {"model": ErrorDetail, "description": "Extension not found"},
}
CONFIG_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    500: {"model": ErrorDetail, "description": "pjsip.conf was never parsed (reason: /health)"},
}
LIST_RESPONSES: dict[int | str, dict[str, Any]] = {
    **UNAUTHORIZED,
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
    304: {"description": "Not Modified: the list is still the one of the ETag in If-None-Match"},
    500: {"model": ErrorDetail, "description": "format=csv: pjsip.conf never parsed"},
}


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether gzip is acceptable; an explicit ``gzip`` entry wins over ``*``."""
    qualities: dict[str, bool] = {}
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.strip().partition(";")
        quality = params.strip().removeprefix("q=").strip()
        qualities[coding.strip()] = not (params and quality.replace(".", "").strip("0") == "")
    return qualities.get("gzip", qualities.get("*", False))


def rendered_response(request: Request, rendered: Rendered, if_none_match: str) -> Response:
    gzipped = accepts_gzip(request.headers.get("accept-encoding", ""))
    etag = rendered.gzip_etag if gzipped else rendered.etag
    headers = {"ETag": etag, "Vary": "Accept-Encoding", "Cache-Control": "no-cache"}
    if etag in if_none_match or if_none_match.strip() == "*":
        return Response(status_code=304, headers=headers)
    if gzipped:
        headers["Content-Encoding"] = "gzip"
        return Response(rendered.gzipped, media_type="application/json", headers=headers)
    return Response(rendered.body, media_type="application/json", headers=headers)


@router.get("", response_model=EndpointList, responses=LIST_RESPONSES, openapi_extra=SECURED)
async def list_endpoints(
    request: Request,
    caller: CallerDep,
    *,
    status: Annotated[Literal["online", "offline"] | None, Query()] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="substring of extension or caller ID")
    ] = None,
    format: Annotated[
        Literal["json", "csv"] | None,
        Query(description="csv: the configured endpoints in the import's columns"),
    ] = None,
    secrets: Annotated[
        bool, Query(description="with format=csv: include passwords (admins only)")
    ] = False,
    if_none_match: Annotated[
        str | None,
        Header(description="the ETag of a list already held: 304 while it is still current"),
    ] = None,
) -> Any:
    """Every endpoint loaded in Asterisk or defined in pjsip.conf, in natural order.

    The unfiltered list carries a strong ETag: send it back in ``If-None-Match`` to get ``304``
    while nothing changed. gzip when accepted. Sends no AMI action."""
    principal = caller.principal
    if format == "csv":
        return export_csv_response(caller, secrets=secrets and principal.sees_secrets)
    snapshot = caller.pbx.publisher.snapshot()
    if status is None and q is None:
        rendered = snapshot.rendered(
            variant_of(principal), lambda body: visible_to(principal, body)
        )
        return rendered_response(request, rendered, if_none_match or "")
    body = caller.readmodel.filter_list(snapshot.body, status=status, q=q)
    return json_response(body, principal)


def export_csv_response(caller: CallerDep, *, secrets: bool) -> Response:
    try:
        rows = caller.readmodel.export_rows(passwords=secrets)
    except ConfigUnavailable:
        raise ConfigReadError() from None
    headers = {"Content-Disposition": 'attachment; filename="endpoints.csv"'}
    return Response(export_csv(rows), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/{extension}", response_model=Endpoint, responses=ERRORS, openapi_extra=SECURED)
async def get_endpoint(caller: CallerDep, extension: ExtensionDep) -> Any:
    """The endpoint, its auths, AORs and contacts as Asterisk reports them (pjsip.conf's view
    while Asterisk has not reported it)."""
    body = await caller.readmodel.endpoint(extension)
    if body is None:
        raise ExtensionNotFound()
    return json_response(body, caller.principal)


@router.get(
    "/{extension}/config",
    response_model=EndpointConfig,
    responses=CONFIG_ERRORS,
    openapi_extra=SECURED,
)
async def get_endpoint_config(caller: CallerDep, extension: ExtensionDep) -> Any:
    """The endpoint section's effective options, as Asterisk applies them. The ``ETag`` header
    covers the content of every config file (send it as ``If-Match`` with a change)."""
    await caller.pbx.store.refresh()  # a hand edit since the last poll counts at once
    try:
        body = caller.readmodel.endpoint_config(extension)
    except ConfigUnavailable:
        raise ConfigReadError() from None
    if body is None:
        raise ExtensionNotFound()
    # The ETag covers every config file: send it as If-Match with a PATCH or DELETE.
    etag = caller.pbx.store.view.etag
    return json_response(body, caller.principal, headers={"ETag": etag})


@router.get("/{rest:path}", include_in_schema=False)
async def no_such_endpoint_route(caller: CallerDep, rest: str) -> None:
    """Anything else under /endpoints (e.g. an encoded ``../``) is an unknown extension."""
    raise ExtensionNotFound()
