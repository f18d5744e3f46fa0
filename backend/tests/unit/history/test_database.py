"""Opening the database: SQLite settings, one-line errors, the ``db`` command."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from ispbx.history import Database, DatabaseOpenError, db_main, head_revision, open_database


async def pragma(database: Database, name: str) -> object:
    async with database.begin() as conn:
        return (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()


async def test_sqlite_runs_in_wal_mode_with_normal_sync_and_a_busy_timeout(
    database: Database,
) -> None:
    assert await pragma(database, "journal_mode") == "wal"
    assert await pragma(database, "synchronous") == 1  # NORMAL
    assert await pragma(database, "busy_timeout") == 500
    assert await pragma(database, "foreign_keys") == 1


async def test_plain_sqlite_url_gets_the_async_driver_and_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "state" / "deeper" / "ispbx.db"
    database = await open_database(f"sqlite:///{path}")
    try:
        assert database.engine.url.drivername == "sqlite+aiosqlite"
        async with database.begin() as conn:
            assert (await conn.execute(sa.text("SELECT 1"))).scalar() == 1
        assert path.exists()
    finally:
        await database.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "not a database URL: 'not a url'"),
        ("mysql://u:p@127.0.0.1/x", "unsupported database 'mysql'"),
        ("sqlite+pysqlite:///x.db", "unsupported driver 'sqlite+pysqlite': use sqlite+aiosqlite"),
        ("sqlite+aiosqlite://", "an in-memory SQLite database keeps no history"),
        ("postgresql+psycopg://u@127.0.0.1/x", "use postgresql+asyncpg"),
    ],
)
async def test_bad_urls_are_one_line_errors(url: str, message: str) -> None:
    with pytest.raises(DatabaseOpenError) as caught:
        await open_database(url)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


async def test_an_unreachable_server_is_one_line_without_the_password() -> None:
    from ispbx_lab.lab import free_port

    url = f"postgresql+asyncpg://ispbx:hunter2@127.0.0.1:{free_port()}/history"
    with pytest.raises(DatabaseOpenError) as caught:
        await open_database(url, timeout=5)
    text = str(caught.value)
    assert text.startswith("cannot open postgresql+asyncpg://ispbx:***@127.0.0.1:")
    assert "hunter2" not in text
    assert "\n" not in text


async def test_an_unopenable_sqlite_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(DatabaseOpenError) as caught:
        await open_database(f"sqlite:///{tmp_path / 'file' / 'ispbx.db'}")
    assert "\n" not in str(caught.value)
    directory = tmp_path / "a-directory.db"
    directory.mkdir()
    with pytest.raises(DatabaseOpenError) as caught:
        await open_database(f"sqlite:///{directory}")
    assert str(caught.value).startswith("cannot open sqlite+aiosqlite:///")
    assert "\n" not in str(caught.value)


def test_db_upgrade_command_migrates_and_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'ispbx.db'}"
    assert db_main(["current"], url) == 0
    assert "revision none" in capsys.readouterr().out
    assert db_main(["upgrade"], url) == 0
    assert f"revision {head_revision()} (newest {head_revision()})" in capsys.readouterr().out
    assert db_main(["downgrade", "base"], url) == 0
    assert "revision none" in capsys.readouterr().out


def test_db_command_with_a_bad_url_names_the_setting(capsys: pytest.CaptureFixture[str]) -> None:
    assert db_main(["upgrade"], "mysql://x") == 2
    err = capsys.readouterr().err
    assert err.startswith("ispbx: ISPBX_DATABASE_URL: unsupported database 'mysql'")
    assert err.count("\n") == 1
