"""The history suites on SQLite: a file in the test's temp dir; an outage is a held write lock."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.history.fixtures import database

__all__ = ["database"]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'history.db'}"


class SqliteLock:
    """Another connection holding SQLite's write lock: every writer fails with "database is
    locked" after its busy timeout, as when a backup or another process keeps it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn: sqlite3.Connection | None = None

    def begin(self) -> None:
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        self.conn.execute("BEGIN EXCLUSIVE")

    def end(self) -> None:
        if self.conn is not None:
            self.conn.execute("ROLLBACK")
            self.conn.close()
            self.conn = None


@pytest.fixture
def outage(database_url: str) -> Iterator[SqliteLock]:
    lock = SqliteLock(Path(database_url.split("///", 1)[1]))
    yield lock
    lock.end()
