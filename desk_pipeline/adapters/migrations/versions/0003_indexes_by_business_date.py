"""indexes by business date

Reads by day (a run's EODs and rankings, the marks of a date range) scanned the whole table:
their primary keys start with book_id or instrument_id, so their cost grew with every day
stored. EOD rows are now indexed by (business_date, book_id), which also serves the by-book
lookups the former (book_id, business_date) index served.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 15:35:00
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("eod_positions", schema=None) as batch_op:
        batch_op.drop_index("ix_eod_positions_book_day")
        batch_op.create_index("ix_eod_positions_day_book", ["business_date", "book_id"])
    with op.batch_alter_table("collateral_rankings", schema=None) as batch_op:
        batch_op.create_index("ix_collateral_rankings_day", ["business_date"])
    with op.batch_alter_table("prices", schema=None) as batch_op:
        batch_op.create_index("ix_prices_date", ["price_date"])


def downgrade() -> None:
    with op.batch_alter_table("prices", schema=None) as batch_op:
        batch_op.drop_index("ix_prices_date")
    with op.batch_alter_table("collateral_rankings", schema=None) as batch_op:
        batch_op.drop_index("ix_collateral_rankings_day")
    with op.batch_alter_table("eod_positions", schema=None) as batch_op:
        batch_op.drop_index("ix_eod_positions_day_book")
        batch_op.create_index("ix_eod_positions_book_day", ["book_id", "business_date"])
