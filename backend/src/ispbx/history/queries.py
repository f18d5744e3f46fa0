"""Reads: endpoint and fleet history, availability, audit, config versions; and retention.

Lists are newest first with keyset pagination on (time, id): the opaque cursor names the last row
returned, so a page costs the same however deep it is and rows written meanwhile do not shift it.
Time windows are half-open, [since, until).
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ispbx.history.availability import Availability, Transition, compute_availability
from ispbx.history.database import Database
from ispbx.history.events import (
    AMI_DOWN,
    AMI_UP,
    CONTACT_TRANSITIONS,
    EventKind,
    EventRow,
    from_us,
    to_us,
    utc_now,
)
from ispbx.history.schema import audit, config_version_files, config_versions, events
from ispbx.history.store import (
    AuditResult,
    AuditRow,
    ConfigVersion,
    ConfigVersionSummary,
    FileChange,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
PRUNE_CHUNK = 5000
AMI_KINDS = [kind.value for kind in AMI_DOWN | AMI_UP]
TRANSITION_KINDS = [kind.value for kind in CONTACT_TRANSITIONS]
_KINDS = {kind.value: kind for kind in EventKind}  # a dict lookup, not an Enum call per row


class InvalidQuery(ValueError):
    """A bad limit, cursor or window; the message is for the client (HTTP 400/422)."""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    rows: list[T]
    next_cursor: str | None  # None: this was the last page


def encode_cursor(at: int, row_id: int) -> str:
    raw = f"{at}:{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        at, row_id = raw.split(":")
        return int(at), int(row_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidQuery("invalid cursor") from None


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidQuery(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def _us(moment: datetime, name: str) -> int:
    try:
        return to_us(moment)
    except ValueError as exc:
        raise InvalidQuery(f"{name}: {exc}") from None


def _event_row(row: sa.Row[Any]) -> EventRow:
    return EventRow(
        row.id, row.pbx, row.endpoint, _KINDS[row.kind], from_us(row.occurred_at), row.data
    )


# What availability needs of an event: the endpoint summary is read inside the database
# (json_extract / ->>), so a window of thousands of events decodes no JSON in Python.
_TRANSITION_COLUMNS = (
    events.c.occurred_at,
    events.c.kind,
    events.c.data["online"].as_boolean().label("online"),
    events.c.data["contacts"].as_integer().label("contacts"),
)


def _transition(row: sa.Row[Any]) -> Transition:
    return Transition(row.occurred_at, _KINDS[row.kind], row.online, row.contacts)


def _audit_row(row: sa.Row[Any]) -> AuditRow:
    return AuditRow(
        id=row.id,
        pbx=row.pbx,
        occurred_at=from_us(row.occurred_at),
        who=row.who,
        role=row.role,
        object_type=row.object_type,
        object_id=row.object_id,
        operation=row.operation,
        result=AuditResult(row.result),
        diff=row.diff,
        detail=row.detail,
        version_before=row.version_before,
        version_after=row.version_after,
    )


class HistoryQueries:
    """Every read of the history database; ``clock`` is "now" for open windows."""

    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.database = database
        self._clock = clock

    # -- events ---------------------------------------------------------------------------------

    async def endpoint_history(
        self,
        pbx: str,
        endpoint: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        kinds: Iterable[EventKind] | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[EventRow]:
        """One endpoint's events, newest first."""
        return await self._events(
            pbx, endpoint, since=since, until=until, kinds=kinds, limit=limit, cursor=cursor
        )

    async def fleet_history(
        self,
        pbx: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        kinds: Iterable[EventKind] | None = None,
        extension: str | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[EventRow]:
        """Every event of the PBX (PBX-wide ones too), newest first; ``extension`` narrows it."""
        return await self._events(
            pbx, extension, since=since, until=until, kinds=kinds, limit=limit, cursor=cursor
        )

    async def _events(
        self,
        pbx: str,
        endpoint: str | None,
        *,
        since: datetime | None,
        until: datetime | None,
        kinds: Iterable[EventKind] | None,
        limit: int,
        cursor: str | None,
    ) -> Page[EventRow]:
        """``endpoint`` None: the whole PBX."""
        check_limit(limit)
        query = sa.select(events).where(events.c.pbx == pbx)
        if endpoint is not None:
            query = query.where(events.c.endpoint == endpoint)
        if since is not None:
            query = query.where(events.c.occurred_at >= _us(since, "since"))
        if until is not None:
            query = query.where(events.c.occurred_at < _us(until, "until"))
        if kinds is not None:
            query = query.where(events.c.kind.in_(sorted({EventKind(k).value for k in kinds})))
        if cursor is not None:
            at, row_id = decode_cursor(cursor)
            query = query.where(sa.tuple_(events.c.occurred_at, events.c.id) < (at, row_id))
        query = query.order_by(events.c.occurred_at.desc(), events.c.id.desc()).limit(limit + 1)
        async with self.database.begin() as conn:
            rows = (await conn.execute(query)).all()
        page = [_event_row(row) for row in rows[:limit]]
        more = len(rows) > limit
        last = rows[limit - 1] if more else None
        return Page(page, encode_cursor(last.occurred_at, last.id) if last is not None else None)

    # -- availability -----------------------------------------------------------------------

    async def availability(
        self, pbx: str, endpoint: str, since: datetime, until: datetime | None = None
    ) -> Availability:
        """Seconds online / unreachable / offline / unknown over [since, until) (until: now;
        a window reaching past now ends now). See ``availability`` for the semantics."""
        since_us, now_us = _us(since, "since"), to_us(self._clock())
        until_us = _us(until, "until") if until is not None else now_us
        if until_us < since_us:
            raise InvalidQuery("until is before since")
        until_us = max(min(until_us, now_us), since_us)
        own = sa.and_(
            events.c.pbx == pbx,
            events.c.endpoint == endpoint,
            events.c.kind.in_(TRANSITION_KINDS),
        )
        ami = sa.and_(
            events.c.pbx == pbx, events.c.endpoint.is_(None), events.c.kind.in_(AMI_KINDS)
        )
        async with self.database.begin() as conn:
            before = await self._last_before(conn, own, since_us)
            ami_before = await self._last_before(conn, ami, since_us)
            window = (
                sa.select(*_TRANSITION_COLUMNS)
                .where(sa.or_(own, ami))
                .where(events.c.occurred_at >= since_us, events.c.occurred_at < until_us)
                .order_by(events.c.occurred_at, events.c.id)
            )
            rows = (await conn.execute(window)).all()
        return compute_availability(
            pbx,
            endpoint,
            since_us,
            until_us,
            before=before,
            ami_before=ami_before,
            transitions=[_transition(row) for row in rows],
        )

    @staticmethod
    async def _last_before(
        conn: AsyncConnection, condition: sa.ColumnElement[bool], at: int
    ) -> Transition | None:
        query = (
            sa.select(*_TRANSITION_COLUMNS)
            .where(condition, events.c.occurred_at < at)
            .order_by(events.c.occurred_at.desc(), events.c.id.desc())
            .limit(1)
        )
        row = (await conn.execute(query)).first()
        return None if row is None else _transition(row)

    # -- audit and config versions ----------------------------------------------------------

    async def audit(
        self,
        pbx: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        who: str | None = None,
        object_type: str | None = None,
        object_id: str | None = None,
        result: AuditResult | str | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[AuditRow]:
        """Audit rows, newest first; every filter is optional."""
        check_limit(limit)
        query = sa.select(audit)
        for column, value in (
            (audit.c.pbx, pbx),
            (audit.c.who, who),
            (audit.c.object_type, object_type),
            (audit.c.object_id, object_id),
        ):
            if value is not None:
                query = query.where(column == value)
        if result is not None:
            try:
                query = query.where(audit.c.result == AuditResult(result).value)
            except ValueError:
                raise InvalidQuery(f"unknown audit result {result!r}") from None
        if since is not None:
            query = query.where(audit.c.occurred_at >= _us(since, "since"))
        if until is not None:
            query = query.where(audit.c.occurred_at < _us(until, "until"))
        if cursor is not None:
            at, row_id = decode_cursor(cursor)
            query = query.where(sa.tuple_(audit.c.occurred_at, audit.c.id) < (at, row_id))
        query = query.order_by(audit.c.occurred_at.desc(), audit.c.id.desc()).limit(limit + 1)
        async with self.database.begin() as conn:
            rows = (await conn.execute(query)).all()
        last = rows[limit - 1] if len(rows) > limit else None
        return Page(
            [_audit_row(row) for row in rows[:limit]],
            encode_cursor(last.occurred_at, last.id) if last is not None else None,
        )

    async def config_versions(
        self, pbx: str, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page[ConfigVersionSummary]:
        """Versions, newest first, with the paths each touched (not their content)."""
        check_limit(limit)
        query = sa.select(config_versions).where(config_versions.c.pbx == pbx)
        if cursor is not None:
            at, row_id = decode_cursor(cursor)
            query = query.where(
                sa.tuple_(config_versions.c.created_at, config_versions.c.id) < (at, row_id)
            )
        query = query.order_by(
            config_versions.c.created_at.desc(), config_versions.c.id.desc()
        ).limit(limit + 1)
        async with self.database.begin() as conn:
            rows = (await conn.execute(query)).all()
            ids = [row.id for row in rows[:limit]]
            paths: dict[int, list[str]] = {version_id: [] for version_id in ids}
            if ids:
                files = await conn.execute(
                    sa.select(config_version_files.c.version_id, config_version_files.c.path)
                    .where(config_version_files.c.version_id.in_(ids))
                    .order_by(config_version_files.c.path)
                )
                for version_id, path in files:
                    paths[version_id].append(path)
        last = rows[limit - 1] if len(rows) > limit else None
        summaries = [
            ConfigVersionSummary(
                row.id,
                row.pbx,
                from_us(row.created_at),
                row.author,
                row.reason,
                tuple(paths[row.id]),
            )
            for row in rows[:limit]
        ]
        return Page(summaries, encode_cursor(last.created_at, last.id) if last else None)

    async def config_version(self, pbx: str, version_id: int) -> ConfigVersion | None:
        """One version with the content of its files (``diff()`` renders them)."""
        async with self.database.begin() as conn:
            row = (
                await conn.execute(
                    sa.select(config_versions).where(
                        config_versions.c.pbx == pbx, config_versions.c.id == version_id
                    )
                )
            ).first()
            if row is None:
                return None
            files = (
                await conn.execute(
                    sa.select(config_version_files)
                    .where(config_version_files.c.version_id == version_id)
                    .order_by(config_version_files.c.path)
                )
            ).all()
        changes = tuple(FileChange(f.path, f.before, f.after) for f in files)
        return ConfigVersion(
            row.id,
            row.pbx,
            from_us(row.created_at),
            row.author,
            row.reason,
            tuple(change.path for change in changes),
            changes,
        )

    # -- retention --------------------------------------------------------------------------

    async def prune(self, older_than: datetime) -> int:
        """Delete events before ``older_than``; the number deleted.

        The last old contact transition of each endpoint and the last old AMI event of each PBX
        are kept, however old: they are the state at the start of any later window (a phone that
        registered 100 days ago and never changed since is online, not unknown). That is at most
        one row per endpoint, even where a newer transition made it redundant. Deletes go in
        chunks by id, a transaction each, so a big prune never holds SQLite's write lock long.
        """
        cutoff = _us(older_than, "older_than")
        keep = await self._keep_ids(cutoff)
        deleted, after_id = 0, -1
        while True:
            async with self.database.begin() as conn:
                ids = list(
                    (
                        await conn.execute(
                            sa.select(events.c.id)
                            .where(events.c.occurred_at < cutoff, events.c.id > after_id)
                            .order_by(events.c.id)
                            .limit(PRUNE_CHUNK)
                        )
                    ).scalars()
                )
                if not ids:
                    break
                after_id = ids[-1]
                doomed = [row_id for row_id in ids if row_id not in keep]
                if doomed:
                    await conn.execute(sa.delete(events).where(events.c.id.in_(doomed)))
                deleted += len(doomed)
        if deleted:
            log.info("history: pruned %d events older than %s", deleted, older_than.isoformat())
        return deleted

    async def _keep_ids(self, cutoff: int) -> set[int]:
        ranked = (
            sa.select(
                events.c.id,
                sa.func.row_number()
                .over(
                    partition_by=(events.c.pbx, events.c.endpoint),
                    order_by=(events.c.occurred_at.desc(), events.c.id.desc()),
                )
                .label("rank"),
            )
            .where(
                events.c.occurred_at < cutoff,
                sa.or_(
                    sa.and_(events.c.endpoint.is_not(None), events.c.kind.in_(TRANSITION_KINDS)),
                    sa.and_(events.c.endpoint.is_(None), events.c.kind.in_(AMI_KINDS)),
                ),
            )
            .subquery()
        )
        async with self.database.begin() as conn:
            result = await conn.execute(sa.select(ranked.c.id).where(ranked.c.rank == 1))
            return set(result.scalars())

    async def count_events(self, pbx: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(events)
        if pbx is not None:
            query = query.where(events.c.pbx == pbx)
        async with self.database.begin() as conn:
            return int((await conn.execute(query)).scalar_one())
