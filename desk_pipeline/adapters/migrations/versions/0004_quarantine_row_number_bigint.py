"""quarantine row numbers are 64-bit

A sql:<url> source numbers its rows by the upstream's sequence, a bigint that passes 2**31 in a
busy booking system: the first such row to be quarantined failed the whole batch's insert, and
with it every run until the row was gone.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 16:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.alter_column(
            "row_number", existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.alter_column(
            "row_number", existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False
        )
