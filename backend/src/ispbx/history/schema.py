"""The history tables as SQLAlchemy Core metadata (what queries use; the migrations create it).

Times are integers: microseconds since the epoch, UTC. The same exact value and ordering in SQLite
and PostgreSQL, 8 bytes a row instead of a 26-character string in SQLite, and no naive/aware
confusion. Ids are 64-bit in PostgreSQL and SQLite's rowid (INTEGER PRIMARY KEY) in SQLite.
A migration test checks that this metadata and the head revision agree.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = sa.MetaData(naming_convention=NAMING)


def id_type() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def json_type() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(JSONB(), "postgresql")


events = sa.Table(
    "events",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("pbx", sa.String(64), nullable=False),
    sa.Column("endpoint", sa.String(80), nullable=True),  # None: PBX-wide (AMI, config)
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("occurred_at", sa.BigInteger(), nullable=False),  # µs since the epoch, UTC
    sa.Column("data", json_type(), nullable=False),
    # Endpoint history and availability: one endpoint, newest first (keyset on occurred_at, id).
    sa.Index(None, "pbx", "endpoint", "occurred_at", "id"),
    # Fleet-wide history: one PBX, newest first.
    sa.Index(None, "pbx", "occurred_at", "id"),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("pbx", sa.String(64), nullable=False),
    sa.Column("occurred_at", sa.BigInteger(), nullable=False),
    sa.Column("who", sa.String(128), nullable=False),  # the token's name
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("object_type", sa.String(32), nullable=False),  # endpoint, auth, aor, config …
    sa.Column("object_id", sa.String(128), nullable=True),
    sa.Column("operation", sa.String(32), nullable=False),  # create, update, delete, import …
    sa.Column("diff", sa.Text(), nullable=False),
    sa.Column("result", sa.String(16), nullable=False),  # applied/rejected/rolled_back/failed
    sa.Column("detail", sa.Text(), nullable=False),
    sa.Column("version_before", sa.BigInteger(), nullable=True),
    sa.Column("version_after", sa.BigInteger(), nullable=True),
    sa.Index(None, "pbx", "occurred_at", "id"),
)

config_versions = sa.Table(
    "config_versions",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("pbx", sa.String(64), nullable=False),
    sa.Column("created_at", sa.BigInteger(), nullable=False),
    sa.Column("author", sa.String(128), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Index(None, "pbx", "created_at", "id"),
)

config_version_files = sa.Table(
    "config_version_files",
    metadata,
    sa.Column(
        "version_id",
        id_type(),
        sa.ForeignKey("config_versions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("path", sa.String(1024), primary_key=True),
    sa.Column("before", sa.Text(), nullable=True),  # None: the file did not exist
    sa.Column("after", sa.Text(), nullable=True),  # None: the change deleted it
)
