"""What a client needs to know to drive the API: who it is (``/me``: its role, so a dashboard
shows edit controls to admins only) and Asterisk's option table (names, kinds, defaults, allowed
values), so a form offers only options Asterisk knows."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from ispbx.api.dependencies import SECURED, CallerDep
from ispbx.api.output import json_response
from ispbx.api.schemas import ErrorDetail, Me, OptionList
from ispbx.pjsip.options import OptionTable

router = APIRouter(tags=["service"])
EDITABLE = ("endpoint", "auth", "aor")


@router.get(
    "/me",
    response_model=Me,
    responses={401: {"model": ErrorDetail}},
    openapi_extra=SECURED,
)
async def get_me(caller: CallerDep) -> Any:
    """The caller's role and name (the token's fingerprint, as the audit shows it)."""
    principal = caller.principal
    body = {"role": principal.role, "name": principal.name, "can_write": principal.sees_secrets}
    return json_response(body, principal)


@router.get(
    "/config/options",
    response_model=OptionList,
    responses={401: {"model": ErrorDetail}},
    openapi_extra=SECURED,
)
async def get_config_options(
    caller: CallerDep,
    type: Annotated[
        Literal["endpoint", "auth", "aor"], Query(description="the object type")
    ] = "endpoint",
) -> Any:
    """Every option of one object type from Asterisk's own documentation (the table the write
    API validates against), and the codec names ``allow`` takes."""
    table = OptionTable.load()
    options = [
        {
            "name": spec.name,
            "kind": spec.kind,
            "default": spec.default,
            "values": list(spec.values),
            "multiple": spec.is_list or spec.accumulates,
            "synopsis": spec.synopsis,
        }
        for spec in sorted(table.options(type).values(), key=lambda s: s.name)
        if spec.name != "type"
    ]
    body = {
        "type": type,
        "asterisk_version": table.asterisk_version,
        "options": options,
        "codecs": list(table.codecs),
    }
    return json_response(body, caller.principal)
