"""desk_calendar: the time zone the warehouse's business days are cut in, recorded once

A process whose DESK_TIMEZONE differed from the one the warehouse was built in stored days with
other bounds under the same dates, silently: on a UTC warehouse, an America/New_York backfill of
a day replaced its EOD (as of 00:00 UTC) by one as of a later instant, which keep-last then kept
against every UTC recomputation. The first process that opens the warehouse records its zone;
every process then checks its own against it. No row is written here: the migration cannot know
the zone an existing warehouse was built in.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 02:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "desk_calendar",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("recorded_at_us", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_desk_calendar_one_row"),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("desk_calendar")
