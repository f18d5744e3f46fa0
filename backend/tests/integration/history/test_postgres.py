"""The history suites, unchanged, on a real PostgreSQL server (Debian's ``postgresql``).

The classes come from the SQLite unit tests; this directory's conftest gives them a fresh
PostgreSQL database per test, and for the outage tests a server of their own that is stopped
mid-run (``pg_ctl stop``) and started again.
"""

from __future__ import annotations

import time

import pytest

from ispbx.history import (
    Database,
    DatabaseOpenError,
    DatabaseUnavailable,
    HistoryQueries,
    open_database,
    upgrade,
)
from tests.integration.postgres import PostgresServer
from tests.unit.history import (
    test_migrations,
    test_queries,
    test_recorder,
    test_store,
)

pytestmark = pytest.mark.integration


class TestMigrationsOnPostgres(test_migrations.TestMigrations):
    pass


class TestHistoryOnPostgres(test_queries.TestHistory):
    pass


class TestAvailabilityOnPostgres(test_queries.TestAvailability):
    pass


class TestRetentionOnPostgres(test_queries.TestRetention):
    pass


class TestAuditOnPostgres(test_store.TestAudit):
    pass


class TestConfigVersionsOnPostgres(test_store.TestConfigVersions):
    pass


class TestRecorderOnPostgres(test_recorder.TestRecorder):
    pass


async def test_it_really_is_postgresql(database: Database) -> None:
    assert database.dialect == "postgresql"
    async with database.begin() as conn:
        version = (await conn.exec_driver_sql("SHOW server_version")).scalar()
    assert str(version)[0].isdigit()


async def test_a_wrong_password_is_one_line_without_it(postgres: PostgresServer) -> None:
    url = postgres.url().replace(postgres.password, "not-the-password")
    with pytest.raises(DatabaseOpenError) as caught:
        await open_database(url)
    text = str(caught.value)
    assert "password authentication failed" in text
    assert "not-the-password" not in text
    assert postgres.password not in text
    assert "\n" not in text


async def test_a_missing_database_is_one_line(postgres: PostgresServer) -> None:
    with pytest.raises(DatabaseOpenError) as caught:
        await open_database(postgres.url("no_such_database"))
    assert 'database "no_such_database" does not exist' in str(caught.value)
    assert "\n" not in str(caught.value)


async def test_queries_fail_fast_while_the_server_is_down_and_work_when_it_returns(
    private_postgres: PostgresServer,
) -> None:
    database = await open_database(private_postgres.create_database("queries"), timeout=5)
    try:
        await upgrade(database)
        queries = HistoryQueries(database)
        await queries.fleet_history("pbx")  # a pooled connection, soon dead
        private_postgres.stop()
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable) as caught:
            await queries.fleet_history("pbx")
        assert time.monotonic() - started < 10
        assert "\n" not in str(caught.value)
        assert private_postgres.password not in str(caught.value)
        private_postgres.start()
        assert (await queries.fleet_history("pbx")).rows == []
    finally:
        if not private_postgres.running():
            private_postgres.start()
        await database.close()
