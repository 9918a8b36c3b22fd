"""late_changes: the late changes table and its arrival time take the glossary's names

The table that stores what a late, amended or cancelled trade leaves behind was named
stale_marks, with its arrival time in marked_at_us; in this project a mark is only a price.
The table becomes late_changes, the column arrived_at_us (when the change was ingested), and
the names derived from the table's (its index; on PostgreSQL its primary key and identity
sequence) follow it. Rows are kept as they are.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.rename_table("stale_marks", "late_changes")
    with op.batch_alter_table("late_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_stale_marks_book")
        batch_op.alter_column(
            "marked_at_us",
            new_column_name="arrived_at_us",
            existing_type=sa.BigInteger(),
            existing_nullable=False,
        )
        batch_op.create_index("ix_late_changes_book", ["book_id", "from_time_us"])
    _rename_postgresql_names("stale_marks", "late_changes")


def downgrade() -> None:
    _rename_postgresql_names("late_changes", "stale_marks")
    with op.batch_alter_table("late_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_late_changes_book")
        batch_op.alter_column(
            "arrived_at_us",
            new_column_name="marked_at_us",
            existing_type=sa.BigInteger(),
            existing_nullable=False,
        )
        batch_op.create_index("ix_stale_marks_book", ["book_id", "from_time_us"])
    op.rename_table("late_changes", "stale_marks")


def _rename_postgresql_names(old: str, new: str) -> None:
    """Rename the primary key and identity sequence PostgreSQL named after table ``old``.

    Called while the table is named late_changes. SQLite has no such names: nothing to do.
    """
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE late_changes RENAME CONSTRAINT {old}_pkey TO {new}_pkey")
    op.execute(f"ALTER SEQUENCE {old}_id_seq RENAME TO {new}_id_seq")
