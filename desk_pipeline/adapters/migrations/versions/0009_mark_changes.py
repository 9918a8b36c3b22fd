"""mark_changes: a changed or late mark makes the valuations and rankings that read it stale

A price or FX rate corrected (or first stored) after the days that read it were valued and
ranked left those days at the old mark with nothing to say so. The prices asset now records
each such mark in mark_changes and restates the days; ``restated_at_us`` is set once they are.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 01:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mark_changes",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("mark_date", sa.String(length=10), nullable=False),
        sa.Column("arrived_at_us", sa.BigInteger(), nullable=False),
        sa.Column("restated_at_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_mark_changes_open", "mark_changes", ["restated_at_us"])


def downgrade() -> None:
    op.drop_index("ix_mark_changes_open", table_name="mark_changes")
    op.drop_table("mark_changes")
