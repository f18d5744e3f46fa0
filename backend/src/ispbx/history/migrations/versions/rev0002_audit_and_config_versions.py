"""The audit trail and the config versions that endpoint management writes.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("pbx", sa.String(64), nullable=False),
        sa.Column("occurred_at", sa.BigInteger(), nullable=False),
        sa.Column("who", sa.String(128), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("object_type", sa.String(32), nullable=False),
        sa.Column("object_id", sa.String(128), nullable=True),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("diff", sa.Text(), nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("version_before", sa.BigInteger(), nullable=True),
        sa.Column("version_after", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit"),
    )
    op.create_index("ix_audit_pbx_occurred_at_id", "audit", ["pbx", "occurred_at", "id"])
    op.create_table(
        "config_versions",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("pbx", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_config_versions"),
    )
    op.create_index(
        "ix_config_versions_pbx_created_at_id", "config_versions", ["pbx", "created_at", "id"]
    )
    op.create_table(
        "config_version_files",
        sa.Column("version_id", _id(), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("version_id", "path", name="pk_config_version_files"),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["config_versions.id"],
            name="fk_config_version_files_version_id_config_versions",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("config_version_files")
    op.drop_index("ix_config_versions_pbx_created_at_id", table_name="config_versions")
    op.drop_table("config_versions")
    op.drop_index("ix_audit_pbx_occurred_at_id", table_name="audit")
    op.drop_table("audit")
