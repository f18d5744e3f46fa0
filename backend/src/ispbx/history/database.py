"""The history database: open it (SQLite or PostgreSQL), migrate it, and wrap its failures.

``open_database`` turns a bad URL or an unreachable database into one ``DatabaseOpenError`` with a
one-line message (the caller prefixes the setting's name). Afterwards, a failing database raises
``DatabaseUnavailable`` (one line too), so callers can tell "the history is down" from a bug.
Every use runs under ``asyncio.timeout``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "ispbx_history_version"
DEFAULT_TIMEOUT = 10.0
MIGRATION_TIMEOUT = 600.0
SQLITE_BUSY = 5.0  # s a writer waits for SQLite's write lock before it fails
DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
# Any number; PostgreSQL's advisory lock that keeps two starting services from migrating at once.
MIGRATION_LOCK = 0x15B8_4157
IMMEDIATE = "ispbx_sqlite_immediate"  # execution option read by the SQLite BEGIN hook


class HistoryDatabaseError(Exception):
    """Base of the database errors; ``str()`` is one line."""


class DatabaseOpenError(HistoryDatabaseError):
    """Bad URL, unsupported driver, unreachable database, or a failed migration."""


class DatabaseUnavailable(HistoryDatabaseError):
    """The database failed (or timed out) after it was opened."""


def one_line(exc: BaseException) -> str:
    """The cause of ``exc`` on one line, without SQLAlchemy's background link."""
    cause: BaseException = exc
    orig = getattr(exc, "orig", None)
    if isinstance(exc, SQLAlchemyError) and isinstance(orig, BaseException):
        cause = orig
    if isinstance(cause, TimeoutError):
        return "timed out"
    text = " ".join(str(cause).split()) or type(cause).__name__
    return text if len(text) <= 300 else text[:297] + "..."


# The failures of a database that went away or answers with an error: what callers map.
FAILURES: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError, TimeoutError)


def normalise_url(url: str) -> URL:
    """Parse ``url``; ``sqlite://``/``postgresql://`` get their async drivers; others refuse."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise DatabaseOpenError(f"not a database URL: {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend not in DRIVERS:
        raise DatabaseOpenError(
            f"unsupported database {backend!r}: use sqlite+aiosqlite:///PATH or "
            "postgresql+asyncpg://USER:PASSWORD@HOST:PORT/NAME"
        )
    driver = DRIVERS[backend]
    if parsed.drivername not in (backend, driver):
        raise DatabaseOpenError(f"unsupported driver {parsed.drivername!r}: use {driver}")
    parsed = parsed.set(drivername=driver)
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise DatabaseOpenError("an in-memory SQLite database keeps no history: give a file path")
    return parsed


@dataclass(frozen=True)
class Database:
    """An open history database: the engine, its dialect and the timeout of every use."""

    engine: AsyncEngine
    url: str  # password hidden
    timeout: float = DEFAULT_TIMEOUT

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.asynccontextmanager
    async def begin(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - the one place the timeout is applied
        *,
        immediate: bool = False,
    ) -> AsyncIterator[AsyncConnection]:
        """A transaction under a timeout; database failures become ``DatabaseUnavailable``.

        ``immediate``: on SQLite, take the write lock at BEGIN (for a transaction that reads,
        then writes, e.g. a migration: otherwise a concurrent writer makes it fail at once)."""
        engine = self.engine.execution_options(**{IMMEDIATE: True}) if immediate else self.engine
        try:
            async with asyncio.timeout(timeout or self.timeout), engine.begin() as conn:
                yield conn
        except FAILURES as exc:
            raise DatabaseUnavailable(f"history database {self.url}: {one_line(exc)}") from exc

    async def close(self) -> None:
        with contextlib.suppress(*FAILURES):
            async with asyncio.timeout(self.timeout):
                await self.engine.dispose()


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _sqlite_pragmas(engine: AsyncEngine, busy: float) -> None:
    """WAL (readers never wait for the writer), synchronous=NORMAL (durable at checkpoints, safe
    in WAL), a busy timeout, foreign keys; explicit BEGIN so reads see one snapshot and DDL is
    transactional (pysqlite's implicit transactions do neither)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            f"busy_timeout={int(busy * 1000)}",
            "foreign_keys=ON",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get(IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_engine(url: URL, timeout: float, sqlite_busy: float = SQLITE_BUSY) -> AsyncEngine:
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(
            url, json_serializer=_compact_json, connect_args={"timeout": sqlite_busy}
        )
        _sqlite_pragmas(engine, sqlite_busy)
        return engine
    return create_async_engine(
        url,
        json_serializer=_compact_json,
        pool_pre_ping=True,  # a server restart leaves dead connections in the pool
        pool_size=5,
        max_overflow=5,
        pool_timeout=timeout,
        connect_args={"timeout": timeout, "command_timeout": timeout},
    )


def _make_parent(path: str) -> None:
    Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)


async def open_database(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - becomes the Database's timeout
    sqlite_busy: float = SQLITE_BUSY,
) -> Database:
    """Open and check the database at ``url`` (one ``SELECT 1``); SQLite's directory is made.

    ``timeout`` bounds every later use too; ``sqlite_busy`` is how long a SQLite writer waits
    for another's write lock (keep it below ``timeout``)."""
    parsed = normalise_url(url)
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        try:
            await asyncio.to_thread(_make_parent, parsed.database)
        except OSError as exc:
            raise DatabaseOpenError(f"cannot create the directory of {shown}: {exc}") from exc
    try:
        engine = create_engine(parsed, timeout, sqlite_busy)
    except (ArgumentError, ImportError, TypeError, ValueError) as exc:
        raise DatabaseOpenError(f"cannot use {shown}: {one_line(exc)}") from exc
    database = Database(engine, shown, timeout)
    try:
        async with database.begin() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except DatabaseUnavailable as exc:
        await database.close()
        raise DatabaseOpenError(f"cannot open {shown}: {one_line(exc.__cause__ or exc)}") from exc
    return database


# -- migrations --------------------------------------------------------------------------------


def alembic_config() -> Config:
    """Alembic's configuration without an ini file: the migrations shipped in the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("version_table", VERSION_TABLE)
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the package ships no migration"
    return head


def _run_alembic(connection: sa.Connection, action: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    if action == "upgrade":
        command.upgrade(config, revision)
    else:
        command.downgrade(config, revision)


def _current(connection: sa.Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


async def _migrate(
    database: Database | str,
    action: str,
    revision: str,
    timeout: float,  # noqa: ASYNC109 - passed to Database.begin
) -> None:
    owned = isinstance(database, str)
    db = await open_database(database) if isinstance(database, str) else database
    try:
        async with db.begin(timeout, immediate=True) as conn:
            if db.dialect == "postgresql":
                await conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK}
                )
            await conn.run_sync(_run_alembic, action, revision)
    except DatabaseUnavailable as exc:
        raise DatabaseOpenError(f"{action} failed: {exc}") from exc
    except Exception as exc:  # alembic raises plain exceptions (CommandError, KeyError …)
        raise DatabaseOpenError(f"{action} of {db.url} failed: {one_line(exc)}") from exc
    finally:
        if owned:
            await db.close()


async def upgrade(
    database: Database | str,
    revision: str = "head",
    *,
    timeout: float = MIGRATION_TIMEOUT,  # noqa: ASYNC109 - passed to Database.begin
) -> None:
    """Bring the schema to ``revision`` (at start: head). A URL is opened and closed here."""
    await _migrate(database, "upgrade", revision, timeout)


async def downgrade(
    database: Database | str,
    revision: str,
    *,
    timeout: float = MIGRATION_TIMEOUT,  # noqa: ASYNC109 - passed to Database.begin
) -> None:
    """Take the schema back to ``revision`` (``base``: no tables)."""
    await _migrate(database, "downgrade", revision, timeout)


async def current_revision(database: Database) -> str | None:
    async with database.begin() as conn:
        return await conn.run_sync(_current)


# -- python -m ispbx db … -------------------------------------------------------------------------


def db_main(argv: list[str], url: str) -> int:
    """``python -m ispbx db upgrade [REV] | downgrade REV | current``: 0 ok, 2 on failure."""
    parser = argparse.ArgumentParser(prog="ispbx db", description="The history database schema.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upgrade", help="migrate to the newest schema (or REV)")
    up.add_argument("revision", nargs="?", default="head")
    down = sub.add_parser("downgrade", help="migrate back to REV (base: drop every table)")
    down.add_argument("revision")
    sub.add_parser("current", help="print the schema revision and the newest one")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(_db_command(args.command, getattr(args, "revision", ""), url))
    except DatabaseOpenError as exc:
        print(f"ispbx: ISPBX_DATABASE_URL: {exc}", file=sys.stderr)
        return 2


async def _db_command(name: str, revision: str, url: str) -> int:
    database = await open_database(url)
    try:
        if name == "upgrade":
            await upgrade(database, revision)
        elif name == "downgrade":
            await downgrade(database, revision)
        try:
            current = await current_revision(database)
        except DatabaseUnavailable as exc:
            raise DatabaseOpenError(str(exc)) from exc
        print(f"{database.url}: revision {current or 'none'} (newest {head_revision()})")
        return 0
    finally:
        await database.close()
