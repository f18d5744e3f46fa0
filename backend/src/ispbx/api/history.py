"""History routes: what happened to an extension (and the fleet), its availability, the audit.

Thin: parse the window and the filters, ask the history queries, answer JSON or CSV (``Accept:
text/csv`` or ``?format=csv``). A database that is down is a 503 saying so, never a hang: every
query runs under the database's own timeout. History holds no secrets (masked before writing)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query, Request, Response

from ispbx.api.dependencies import SECURED, AdminDep, CallerDep, ExtensionDep
from ispbx.api.errors import InvalidParameter, ServiceUnavailable
from ispbx.api.output import json_response
from ispbx.api.schemas import AuditPage, AvailabilityOut, ErrorDetail, HistoryPage
from ispbx.history import (
    DatabaseUnavailable,
    EventKind,
    InvalidQuery,
    availability_csv,
    history_csv,
    parse_kinds,
)

router = APIRouter(tags=["history"])
T = TypeVar("T")
DEFAULT_WINDOW = timedelta(hours=24)
CSV = "text/csv; charset=utf-8"
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorDetail, "description": "no or unknown API token"},
    503: {"model": ErrorDetail, "description": "the history database is unavailable"},
}
CSV_CONTENT = {"text/csv": {"schema": {"type": "string"}}}
EXTENSION_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"model": ErrorDetail, "description": "not a possible extension name"},
    200: {"content": CSV_CONTENT},
}

# Times are ISO 8601 text only (pydantic would also take a bare number as a Unix time).
TIME = {"format": "date-time"}
Since = Annotated[
    str | None,
    Query(max_length=40, json_schema_extra=TIME, description="ISO 8601; no offset means UTC"),
]
Until = Annotated[
    str | None,
    Query(max_length=40, json_schema_extra=TIME, description="ISO 8601; default: now"),
]
Kinds = Annotated[
    list[str] | None, Query(alias="kind", description="event kinds, repeated or comma-separated")
]
Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[str | None, Query(max_length=200, description="from next_cursor")]
Format = Annotated[Literal["json", "csv"] | None, Query(description="or Accept: text/csv")]


def utc(text: str | None, name: str) -> datetime | None:
    """An ISO 8601 time (``Z`` or an offset; none means UTC), or a 422 naming the parameter."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidParameter(f"not an ISO 8601 time: {text!r}", where=("query", name)) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def wants_csv(request: Request, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt == "csv"
    return "text/csv" in request.headers.get("accept", "").lower()


def kinds_of(words: list[str] | None) -> frozenset[EventKind] | None:
    """The kinds asked for (None: every kind)."""
    wanted = [w.strip() for word in words or () for w in word.split(",") if w.strip()]
    if not wanted:
        return None
    try:
        return parse_kinds(wanted)
    except ValueError as exc:
        raise InvalidParameter(str(exc), where=("query", "kind")) from None


async def ask(query: Callable[[], Awaitable[T]]) -> T:
    """Run one history query; its errors become 422 (bad input) or 503 (database down)."""
    try:
        return await query()
    except InvalidQuery as exc:
        raise InvalidParameter(str(exc)) from None
    except DatabaseUnavailable as exc:
        raise ServiceUnavailable(f"history database unavailable: {exc}") from None


def csv_response(text: str, name: str) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{name}.csv"'}
    return Response(text, media_type=CSV, headers=headers)


def page_body(rows: Iterable[Any], next_cursor: str | None, key: str) -> dict[str, Any]:
    return {key: [row.as_dict() for row in rows], "next_cursor": next_cursor}


@router.get(
    "/endpoints/{extension}/history",
    response_model=HistoryPage,
    responses=EXTENSION_ERRORS,
    openapi_extra=SECURED,
)
async def get_endpoint_history(
    request: Request,
    caller: CallerDep,
    extension: ExtensionDep,
    *,
    since: Since = None,
    until: Until = None,
    kind: Kinds = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    format: Format = None,
) -> Any:
    """What happened to one extension, newest first: registrations, reachability, RTT changes,
    device states, flapping. Works for an extension that no longer exists too."""
    kinds = kinds_of(kind)
    page = await ask(
        lambda: caller.services.history.queries.endpoint_history(
            caller.pbx.id,
            extension,
            since=utc(since, "since"),
            until=utc(until, "until"),
            kinds=kinds,
            limit=limit,
            cursor=cursor,
        )
    )
    if wants_csv(request, format):
        return csv_response(history_csv(page.rows), f"history-{extension}")
    return json_response(page_body(page.rows, page.next_cursor, "events"), caller.principal)


@router.get(
    "/history",
    response_model=HistoryPage,
    responses={**ERRORS, 200: {"content": CSV_CONTENT}},
    openapi_extra=SECURED,
)
async def get_history(
    request: Request,
    caller: CallerDep,
    *,
    since: Since = None,
    until: Until = None,
    kind: Kinds = None,
    extension: Annotated[str | None, Query(max_length=80)] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    format: Format = None,
) -> Any:
    """What changed on the whole PBX, newest first (e.g. ``?since=`` an hour ago)."""
    kinds = kinds_of(kind)
    page = await ask(
        lambda: caller.services.history.queries.fleet_history(
            caller.pbx.id,
            since=utc(since, "since"),
            until=utc(until, "until"),
            kinds=kinds,
            extension=extension,
            limit=limit,
            cursor=cursor,
        )
    )
    if wants_csv(request, format):
        return csv_response(history_csv(page.rows), "history")
    return json_response(page_body(page.rows, page.next_cursor, "events"), caller.principal)


@router.get(
    "/endpoints/{extension}/availability",
    response_model=AvailabilityOut,
    responses=EXTENSION_ERRORS,
    openapi_extra=SECURED,
)
async def get_endpoint_availability(
    request: Request,
    caller: CallerDep,
    extension: ExtensionDep,
    *,
    since: Since = None,
    until: Until = None,
    format: Format = None,
) -> Any:
    """Seconds online / offline / unknown over a window (default: the last 24 h) and the share,
    from the recorded transitions, with the periods for a timeline."""
    start = utc(since, "since") or datetime.now(UTC) - DEFAULT_WINDOW
    end = utc(until, "until")
    result = await ask(
        lambda: caller.services.history.queries.availability(caller.pbx.id, extension, start, end)
    )
    if wants_csv(request, format):
        return csv_response(availability_csv([result]), f"availability-{extension}")
    return json_response(result.as_dict(), caller.principal)


@router.get(
    "/audit",
    response_model=AuditPage,
    responses={**ERRORS, 403: {"model": ErrorDetail, "description": "not an admin token"}},
    openapi_extra=SECURED,
)
async def get_audit(
    caller: AdminDep,
    *,
    since: Since = None,
    until: Until = None,
    who: Annotated[str | None, Query(max_length=200)] = None,
    object_type: Annotated[str | None, Query(max_length=40)] = None,
    object_id: Annotated[str | None, Query(alias="object", max_length=80)] = None,
    result: Annotated[
        Literal["applied", "rejected", "rolled_back", "failed"] | None, Query()
    ] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Any:
    """Every attempted change: who (token name and role), when, what, the diff, the result and
    the config versions before and after. Admins only."""
    page = await ask(
        lambda: caller.services.history.queries.audit(
            caller.pbx.id,
            since=utc(since, "since"),
            until=utc(until, "until"),
            who=who,
            object_type=object_type,
            object_id=object_id,
            result=result,
            limit=limit,
            cursor=cursor,
        )
    )
    return json_response(page_body(page.rows, page.next_cursor, "entries"), caller.principal)
