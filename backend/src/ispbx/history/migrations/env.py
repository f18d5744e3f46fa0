"""Alembic's environment: run on the connection ``ispbx.history.database`` hands over.

There is no ini file and no offline (SQL script) mode: the service migrates its own database at
start, or ``python -m ispbx db upgrade`` does. ``render_as_batch`` lets SQLite alter tables (it
recreates them), which later revisions need.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from ispbx.history.schema import metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, sa.Connection):
        raise RuntimeError("run the history migrations through ispbx.history.database.upgrade")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=context.config.get_main_option("version_table") or "alembic_version",
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
