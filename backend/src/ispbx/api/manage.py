"""The write API (admins only): create, patch, delete, import endpoints; config versions and
revert. Thin: parse the request, hand it to the PBX's ManageService, map its refusals to HTTP.

Every write takes ``?dry_run=true`` (the validation and the unified diff per file, nothing
written). PATCH, DELETE and revert need ``If-Match`` with the ETag of the file set (428 without,
412 when the files changed since); create and import honour one when sent.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response

from ispbx.api.dependencies import SECURED, AdminDep, ExtensionDep
from ispbx.api.errors import ApiError
from ispbx.api.output import json_response
from ispbx.api.schemas import ErrorDetail, VersionList, VersionOut, WriteResult
from ispbx.history import DatabaseUnavailable
from ispbx.manage.importer import ImportFormatError, ImportRow, parse_csv, parse_jsonl
from ispbx.manage.planner import Conflict, FieldError, NotFound, Rejected
from ispbx.manage.requests import CreateEndpoint, PatchEndpoint
from ispbx.manage.service import ManageError, Outcome, Who

router = APIRouter(tags=["manage"])
MAX_IMPORT_BYTES = 8 * 1024 * 1024
DryRun = Annotated[bool, Query(description="validate and show the diff; write nothing")]
IfMatch = Annotated[
    str | None,
    Header(description="the ETag of GET /endpoints/{extension}/config or GET /config/versions"),
]
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorDetail, "description": "the body is not JSON"},
    401: {"model": ErrorDetail, "description": "no or unknown API token"},
    403: {"model": ErrorDetail, "description": "not an admin token"},
    404: {"model": ErrorDetail, "description": "no such extension in the files"},
    409: {
        "model": ErrorDetail,
        "description": "exists already, cannot be edited safely, or Asterisk did not load it as "
        "meant (rolled back; see mismatches)",
    },
    412: {"model": ErrorDetail, "description": "the files changed since that ETag"},
    428: {"model": ErrorDetail, "description": "If-Match is required"},
    502: {"model": ErrorDetail, "description": "Asterisk did not reload (files put back)"},
    503: {"model": ErrorDetail, "description": "AMI down, or a file cannot be written"},
}


class WriteRefused(ApiError):
    """A refusal of the write path, with its extra fields (mismatches, rows)."""

    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status_code = status
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, **self.extra}


class FieldsRefused(ApiError):
    """422 in FastAPI's validation shape: one entry per field (or import row)."""

    status_code = 422

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors

    def body(self) -> dict[str, Any]:
        return {
            "detail": [
                {"loc": list(e.where), "msg": e.message, "type": "value_error"} for e in self.errors
            ]
        }


def who(caller: AdminDep) -> Who:
    return Who(caller.principal.name, caller.principal.role)


async def run(write: Any) -> Outcome:
    """Await a ManageService call, its refusals turned into API errors."""
    try:
        outcome: Outcome = await write
    except Rejected as exc:
        raise FieldsRefused(exc.errors) from None
    except Conflict as exc:
        raise WriteRefused(409, str(exc)) from None
    except NotFound as exc:
        raise WriteRefused(404, str(exc)) from None
    except ManageError as exc:
        mismatches = [m.__dict__ for m in exc.mismatches]
        extra = {"mismatches": mismatches} if mismatches else {}
        raise WriteRefused(exc.status, exc.detail, **extra) from None
    except DatabaseUnavailable as exc:
        raise WriteRefused(503, f"history database unavailable: {exc}") from None
    return outcome


async def result(caller: AdminDep, outcome: Outcome, *, created: bool = False) -> Response:
    endpoint = None
    if not outcome.dry_run and outcome.operation in ("create", "update"):
        endpoint = await caller.readmodel.endpoint(outcome.extensions[0])
    body = {
        "status": "dry_run" if outcome.dry_run else "applied",
        "operation": outcome.operation,
        "extensions": outcome.extensions,
        "diff": outcome.diff,
        "warnings": outcome.warnings,
        "password": outcome.password,
        "passwords": outcome.passwords,
        "kept": outcome.kept,
        "version": outcome.version,
        "etag": outcome.etag,
        "endpoint": endpoint,
    }
    status = 201 if created and not outcome.dry_run else 200
    return json_response(body, caller.principal, status_code=status, headers={"ETag": outcome.etag})


@router.post(
    "/endpoints",
    status_code=201,
    response_model=WriteResult,
    responses={**WRITE_ERRORS, 200: {"model": WriteResult, "description": "the dry run"}},
    openapi_extra=SECURED,
)
async def create_endpoint(
    caller: AdminDep, body: CreateEndpoint, dry_run: DryRun = False, if_match: IfMatch = None
) -> Any:
    """Create an extension: endpoint + auth + aor in the managed include file (pjsip_ispbx.conf
    beside pjsip.conf, included once). A password is generated when absent, returned once."""
    service = caller.pbx.manage
    outcome = await run(service.create(body, who(caller), dry_run=dry_run, if_match=if_match))
    return await result(caller, outcome, created=True)


@router.post(
    "/endpoints/import",
    response_model=WriteResult,
    responses={
        **WRITE_ERRORS,
        413: {"model": ErrorDetail, "description": "the upload is too big"},
        415: {"model": ErrorDetail, "description": "neither CSV nor JSON lines"},
    },
    openapi_extra={
        **SECURED,
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        },
    },
)
async def import_endpoints(
    request: Request, caller: AdminDep, dry_run: DryRun = False, if_match: IfMatch = None
) -> Any:
    """Create many extensions in one transaction: one write, one reload, one read-back. Any bad
    row is a 422 listing every bad row with its line; nothing is applied."""
    rows = await import_rows(request)
    service = caller.pbx.manage
    outcome = await run(service.import_rows(rows, who(caller), dry_run=dry_run, if_match=if_match))
    return await result(caller, outcome, created=False)


async def import_rows(request: Request) -> list[ImportRow]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("text/csv", "application/x-ndjson", "application/jsonl"):
        raise WriteRefused(415, "send text/csv (a header row) or application/x-ndjson")
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_IMPORT_BYTES:
            raise WriteRefused(413, f"an import may have at most {MAX_IMPORT_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise WriteRefused(422, "the upload is not UTF-8 text") from None
    try:
        return parse_csv(text) if kind == "text/csv" else parse_jsonl(text)
    except ImportFormatError as exc:
        raise FieldsRefused([FieldError(("body",), str(exc))]) from None


@router.patch(
    "/endpoints/{extension}",
    response_model=WriteResult,
    responses=WRITE_ERRORS,
    openapi_extra=SECURED,
)
async def update_endpoint(
    caller: AdminDep,
    extension: ExtensionDep,
    body: PatchEndpoint,
    dry_run: DryRun = False,
    if_match: IfMatch = None,
) -> Any:
    """Merge-patch the endpoint, its (first) auth and AOR: a value sets the option where it is
    defined for that object, null removes it (the template's or Asterisk's default applies)."""
    service = caller.pbx.manage
    outcome = await run(
        service.update(extension, body, who(caller), dry_run=dry_run, if_match=if_match)
    )
    return await result(caller, outcome)


@router.delete(
    "/endpoints/{extension}",
    response_model=WriteResult,
    responses=WRITE_ERRORS,
    openapi_extra=SECURED,
)
async def delete_endpoint(
    caller: AdminDep, extension: ExtensionDep, dry_run: DryRun = False, if_match: IfMatch = None
) -> Any:
    """Delete the endpoint and the auth/AOR sections only it uses (shared ones stay: ``kept``),
    with their ``(+)`` continuations."""
    service = caller.pbx.manage
    outcome = await run(service.delete(extension, who(caller), dry_run=dry_run, if_match=if_match))
    return await result(caller, outcome)


@router.get(
    "/config/versions", response_model=VersionList, responses=WRITE_ERRORS, openapi_extra=SECURED
)
async def list_config_versions(
    caller: AdminDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Any:
    """Every applied change, newest first; the ETag header is that of the file set now."""
    try:
        page = await caller.services.history.queries.config_versions(
            caller.pbx.id, limit=limit, cursor=cursor
        )
    except ValueError as exc:
        raise FieldsRefused([FieldError(("query",), str(exc))]) from None
    except DatabaseUnavailable as exc:
        raise WriteRefused(503, f"history database unavailable: {exc}") from None
    body = {"versions": [v.as_dict() for v in page.rows], "next_cursor": page.next_cursor}
    etag = (await caller.pbx.store.refresh()).etag
    return json_response(body, caller.principal, headers={"ETag": etag})


VersionId = Annotated[int, Path(ge=1, le=2**62)]


@router.get(
    "/config/versions/{version_id}",
    response_model=VersionOut,
    responses=WRITE_ERRORS,
    openapi_extra=SECURED,
)
async def get_config_version(caller: AdminDep, version_id: VersionId) -> Any:
    """One change: who, when, why, and the unified diff of every file it touched."""
    try:
        version = await caller.services.history.queries.config_version(caller.pbx.id, version_id)
    except DatabaseUnavailable as exc:
        raise WriteRefused(503, f"history database unavailable: {exc}") from None
    if version is None:
        raise WriteRefused(404, f"no config version {version_id}")
    return json_response(version.as_dict(), caller.principal)


@router.post(
    "/config/versions/{version_id}/revert",
    response_model=WriteResult,
    responses=WRITE_ERRORS,
    openapi_extra=SECURED,
)
async def revert_config_version(
    caller: AdminDep, version_id: VersionId, dry_run: DryRun = False, if_match: IfMatch = None
) -> Any:
    """Put the files that change touched back as they were before it, through the same
    pipeline (validated, reloaded, read back)."""
    service = caller.pbx.manage
    outcome = await run(service.revert(version_id, who(caller), dry_run=dry_run, if_match=if_match))
    return await result(caller, outcome)
