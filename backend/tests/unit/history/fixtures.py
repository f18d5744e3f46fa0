"""Fixtures shared by the history suites on SQLite (unit) and PostgreSQL (integration).

Each conftest provides ``database_url`` (an empty database of its kind) and ``outage`` (a way to
make that kind of database fail writes and come back); these build on them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Protocol

import pytest

from ispbx.history import Database, open_database, upgrade

# Fixed times: every test says when things happened.
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class Outage(Protocol):
    """Make the database refuse writes (``begin``) and accept them again (``end``, which may
    be called again)."""

    def begin(self) -> None: ...

    def end(self) -> None: ...


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """An open database at the newest schema."""
    db = await open_database(database_url, timeout=10.0, sqlite_busy=0.5)
    await upgrade(db)
    yield db
    await db.close()
