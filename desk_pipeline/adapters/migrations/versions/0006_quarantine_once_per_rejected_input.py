"""quarantine: one row per distinct rejected input, with every source it arrived in

The same bad row re-quarantined for a renamed copy, a re-sent file with rows appended or a
CRLF rewrite gave one quarantine row per arrival (5 rows for 2 distinct bad rows). A quarantine
row now carries its input's fingerprint (unique) and its arrivals are listed apart. Rows stored
before this revision keep a NULL fingerprint and get their own source as their one arrival.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 20:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fingerprint", sa.String(length=64), nullable=True))
        batch_op.create_index("ux_quarantine_fingerprint", ["fingerprint"], unique=True)
    op.create_table(
        "quarantine_arrivals",
        sa.Column("quarantine_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=512), nullable=False),
        sa.Column("row_number", sa.BigInteger(), nullable=False),
        sa.Column("arrived_at_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["quarantine_id"], ["quarantine.id"]),
        sa.PrimaryKeyConstraint("quarantine_id", "source"),
    )
    op.execute(
        "INSERT INTO quarantine_arrivals (quarantine_id, source, row_number, arrived_at_us) "
        "SELECT id, source, row_number, quarantined_at_us FROM quarantine"
    )


def downgrade() -> None:
    op.drop_table("quarantine_arrivals")
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_index("ux_quarantine_fingerprint")
        batch_op.drop_column("fingerprint")
