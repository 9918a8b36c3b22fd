"""eod valuations

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 15:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eod_valuations",
        sa.Column("snapshot_id", sa.String(length=36), nullable=False),
        sa.Column("instrument_id", sa.String(length=64), nullable=False),
        sa.Column("book_id", sa.String(length=64), nullable=False),
        sa.Column("business_date", sa.String(length=10), nullable=False),
        sa.Column("price", sa.Float(), nullable=True),
        sa.Column("price_date", sa.String(length=10), nullable=True),
        sa.Column("stale_price", sa.Boolean(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("base_currency", sa.String(length=3), nullable=True),
        sa.Column("fx_rate", sa.Float(), nullable=True),
        sa.Column("market_value", sa.Float(), nullable=True),
        sa.Column("market_value_base", sa.Float(), nullable=True),
        sa.Column("unrealized_pnl", sa.Float(), nullable=True),
        sa.Column("unrealized_pnl_base", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("snapshot_id", "instrument_id"),
    )
    with op.batch_alter_table("eod_valuations", schema=None) as batch_op:
        batch_op.create_index("ix_eod_valuations_day", ["business_date"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("eod_valuations", schema=None) as batch_op:
        batch_op.drop_index("ix_eod_valuations_day")
    op.drop_table("eod_valuations")
