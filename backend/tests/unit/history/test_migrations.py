"""Migrations: from an empty database, from the previous revision, and back (SQLite here; the
PostgreSQL integration tests run this same class)."""

from __future__ import annotations

import asyncio
import json

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from ispbx.history import (
    Database,
    HistoryQueries,
    current_revision,
    downgrade,
    head_revision,
    open_database,
    upgrade,
)
from ispbx.history.database import VERSION_TABLE
from ispbx.history.schema import events, metadata
from tests.unit.history.fixtures import T0


async def tables(database: Database) -> set[str]:
    async with database.begin() as conn:
        return set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))


def schema_differences(connection: sa.Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "version_table": VERSION_TABLE}
    )
    return list(compare_metadata(context, metadata))


class TestMigrations:
    async def test_an_empty_database_is_brought_to_the_newest_schema(
        self, database_url: str
    ) -> None:
        database = await open_database(database_url)
        try:
            assert await current_revision(database) is None
            await upgrade(database)
            assert await current_revision(database) == head_revision()
            assert {"events", "audit", "config_versions", "config_version_files"} <= await tables(
                database
            )
            async with database.begin() as conn:
                assert await conn.run_sync(schema_differences) == []
        finally:
            await database.close()

    async def test_upgrade_from_the_previous_revision_keeps_the_rows(
        self, database_url: str
    ) -> None:
        database = await open_database(database_url)
        try:
            await upgrade(database, "0001")
            assert "audit" not in await tables(database)
            async with database.begin() as conn:
                # The events table is unchanged since 0001, so today's metadata can insert.
                await conn.execute(
                    sa.insert(events),
                    {
                        "pbx": "pbx",
                        "endpoint": "101",
                        "kind": "registered",
                        "occurred_at": 1_740_830_400_000_000,
                        "data": {"uri": "sip:101@127.0.0.1"},
                    },
                )
            await upgrade(database)
            assert await current_revision(database) == head_revision()
            page = await HistoryQueries(database).endpoint_history("pbx", "101")
            assert [(row.kind, row.data) for row in page.rows] == [
                ("registered", {"uri": "sip:101@127.0.0.1"})
            ]
            assert "audit" in await tables(database)
        finally:
            await database.close()

    async def test_downgrade_and_upgrade_again(self, database: Database) -> None:
        await downgrade(database, "0001")
        assert await current_revision(database) == "0001"
        assert "config_versions" not in await tables(database)
        assert "events" in await tables(database)
        await downgrade(database, "base")
        assert await current_revision(database) is None
        assert not {"events", "audit"} & await tables(database)
        await upgrade(database)
        assert await current_revision(database) == head_revision()

    async def test_two_starts_migrating_at_once_both_succeed(self, database_url: str) -> None:
        await asyncio.gather(upgrade(database_url), upgrade(database_url))
        database = await open_database(database_url)
        try:
            assert await current_revision(database) == head_revision()
        finally:
            await database.close()

    async def test_upgrading_an_up_to_date_database_changes_nothing(
        self, database: Database
    ) -> None:
        from ispbx.history import EventKind, HistoryEvent, HistoryStore

        await HistoryStore(database).write_events(
            [HistoryEvent("pbx", "101", EventKind.REGISTERED, T0, {"n": 1})]
        )
        await upgrade(database)
        await upgrade(database)
        page = await HistoryQueries(database).endpoint_history("pbx", "101")
        assert json.dumps(page.rows[0].data) == '{"n": 1}'
