"""The events table: what happened to each endpoint and PBX.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("pbx", sa.String(64), nullable=False),
        sa.Column("endpoint", sa.String(80), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("occurred_at", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index(
        "ix_events_pbx_endpoint_occurred_at_id", "events", ["pbx", "endpoint", "occurred_at", "id"]
    )
    op.create_index("ix_events_pbx_occurred_at_id", "events", ["pbx", "occurred_at", "id"])


def downgrade() -> None:
    op.drop_table("events")
