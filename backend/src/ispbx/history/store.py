"""Writes: event batches (for the recorder), audit rows and config versions (awaited by callers).

Secrets are masked on the way in: event ``data`` keys that look like secrets, and the values of
``password = …``-like lines in audit diffs and details. Config versions keep file contents as
they were (a revert needs them); ``ConfigVersion.diff`` masks them for display.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ispbx.history.database import Database
from ispbx.history.events import (
    HistoryEvent,
    clean_data,
    iso,
    mask_secret_lines,
    to_us,
    utc_now,
)
from ispbx.history.schema import audit, config_version_files, config_versions, events


class AuditResult(StrEnum):
    APPLIED = "applied"
    REJECTED = "rejected"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One attempt to change the PBX's configuration, whatever its outcome."""

    pbx: str
    who: str  # the token's name
    role: str
    object_type: str  # endpoint, auth, aor, config, import …
    object_id: str | None
    operation: str  # create, update, delete, import, revert …
    result: AuditResult
    diff: str = ""
    detail: str = ""
    version_before: int | None = None
    version_after: int | None = None
    occurred_at: datetime | None = None  # None: now

    def __post_init__(self) -> None:
        object.__setattr__(self, "result", AuditResult(self.result))


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    pbx: str
    occurred_at: datetime
    who: str
    role: str
    object_type: str
    object_id: str | None
    operation: str
    result: AuditResult
    diff: str
    detail: str
    version_before: int | None
    version_after: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pbx": self.pbx,
            "occurred_at": iso(self.occurred_at),
            "who": self.who,
            "role": self.role,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "operation": self.operation,
            "result": self.result.value,
            "diff": self.diff,
            "detail": self.detail,
            "version_before": self.version_before,
            "version_after": self.version_after,
        }


@dataclass(frozen=True, slots=True)
class FileChange:
    """One file a change touched: its content before and after (None: absent)."""

    path: str
    before: str | None
    after: str | None

    def diff(self, *, mask: bool = True) -> str:
        """Unified diff of the file; secret values are masked unless ``mask`` is False (after
        diffing, so a changed password still shows as a changed line)."""
        before, after = self.before or "", self.after or ""
        lines = difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile="/dev/null" if self.before is None else f"a/{self.path}",
            tofile="/dev/null" if self.after is None else f"b/{self.path}",
        )
        text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
        return mask_secret_lines(text) if mask else text


@dataclass(frozen=True, slots=True)
class ConfigVersionSummary:
    id: int
    pbx: str
    created_at: datetime
    author: str
    reason: str
    paths: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pbx": self.pbx,
            "created_at": iso(self.created_at),
            "author": self.author,
            "reason": self.reason,
            "paths": list(self.paths),
        }


@dataclass(frozen=True, slots=True)
class ConfigVersion(ConfigVersionSummary):
    files: tuple[FileChange, ...] = field(default=())

    def diff(self, *, mask: bool = True) -> str:
        """The unified diff of every file, in path order."""
        return "".join(change.diff(mask=mask) for change in self.files)

    def as_dict(self) -> dict[str, Any]:
        return {**ConfigVersionSummary.as_dict(self), "diff": self.diff()}


def event_rows(batch: Sequence[HistoryEvent]) -> list[dict[str, Any]]:
    return [
        {
            "pbx": event.pbx,
            "endpoint": event.endpoint,
            "kind": event.kind.value,
            "occurred_at": to_us(event.occurred_at),
            "data": clean_data(event.data),
        }
        for event in batch
    ]


async def insert_events(conn: AsyncConnection, batch: Sequence[HistoryEvent]) -> None:
    if batch:
        await conn.execute(sa.insert(events), event_rows(batch))


class HistoryStore:
    """The writes that callers await: event batches, audit rows, config versions."""

    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.database = database
        self._clock = clock

    async def write_events(self, batch: Sequence[HistoryEvent]) -> None:
        """One transaction for the whole batch."""
        async with self.database.begin() as conn:
            await insert_events(conn, batch)

    async def add_audit(self, entry: AuditEntry) -> int:
        """Write one audit row; its id."""
        row = {
            "pbx": entry.pbx,
            "occurred_at": to_us(entry.occurred_at or self._clock()),
            "who": entry.who,
            "role": entry.role,
            "object_type": entry.object_type,
            "object_id": entry.object_id,
            "operation": entry.operation,
            "diff": mask_secret_lines(entry.diff),
            "result": entry.result.value,
            "detail": mask_secret_lines(entry.detail),
            "version_before": entry.version_before,
            "version_after": entry.version_after,
        }
        async with self.database.begin() as conn:
            result = await conn.execute(sa.insert(audit).returning(audit.c.id), row)
            return int(result.scalar_one())

    async def add_config_version(
        self,
        pbx: str,
        author: str,
        reason: str,
        files: Sequence[FileChange],
        *,
        created_at: datetime | None = None,
    ) -> int:
        """Keep the content of every file a change touched, before and after; the version id."""
        if len({change.path for change in files}) != len(files):
            raise ValueError("a config version lists each file once")
        version = {
            "pbx": pbx,
            "created_at": to_us(created_at or self._clock()),
            "author": author,
            "reason": reason,
        }
        async with self.database.begin() as conn:
            result = await conn.execute(
                sa.insert(config_versions).returning(config_versions.c.id), version
            )
            version_id = int(result.scalar_one())
            if files:
                await conn.execute(
                    sa.insert(config_version_files),
                    [
                        {
                            "version_id": version_id,
                            "path": f.path,
                            "before": f.before,
                            "after": f.after,
                        }
                        for f in files
                    ],
                )
            return version_id
