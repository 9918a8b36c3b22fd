"""position micro-units: stored snapshots keep their quantities as exact integer micro-units

A stored EOD or intraday snapshot is the state the next run rolls from. Its quantity was a
float, which tells a position's micro-units apart only below 2**33 units, and whose conversion
back was exact only below 2**32: above, a position rolled day by day from its stored EOD could
differ from its recomputation from the trades (bought 4 x 1e9 + 456946523.790561, sold the same
the next day: a short of -0.000001 that rolled forward to every later day). The column quantity
becomes quantity_micro_units, BIGINT: the position in micro-units (domain.precision), exact up
to 2**63. Upgrading converts each stored float to the micro-units it is the nearest float of
(domain.precision.to_units' rule), a float with dust to the nearest micro-unit; downgrading
converts back to the nearest float. Rows are kept.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TABLES = ("intraday_positions", "eod_positions")
SCALE = 1_000_000  # domain.precision.QUANTITY_SCALE when this revision was written


def upgrade() -> None:
    for table in TABLES:
        _replace_column(
            table, "quantity", "quantity_micro_units", sa.BigInteger(), _micro_units("quantity")
        )


def downgrade() -> None:
    for table in TABLES:
        units = f"CAST(quantity_micro_units AS DOUBLE PRECISION) / {SCALE}"
        _replace_column(table, "quantity_micro_units", "quantity", sa.Float(), units)


def _replace_column(
    table: str, old: str, new: str, new_type: sa.types.TypeEngine, value: str
) -> None:
    """Add column ``new``, set it to the SQL expression ``value`` (of ``old``), drop ``old``.

    One UPDATE on either database; SQLite then copies the table once to make the new column
    NOT NULL and drop the old one (batch mode), PostgreSQL alters it in place.
    """
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.add_column(sa.Column(new, new_type, nullable=True))
    op.execute(f"UPDATE {table} SET {new} = {value}")
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.alter_column(new, existing_type=new_type, nullable=False)
        batch_op.drop_column(old)


def _micro_units(column: str) -> str:
    """SQL for the BIGINT micro-units of the float quantity ``column``.

    ``column`` x 10**6, rounded, can be one micro-unit off above 2**32 units (the float's error
    and the product's rounding add up past a half): of the rounded value and its neighbours,
    the one whose nearest float is the stored one is taken, as precision.to_units does.
    Dividing by 10**6 in double precision rounds correctly on SQLite and PostgreSQL alike.
    """
    rounded = f"ROUND({column} * {SCALE})"

    def gives_back(units: str) -> str:
        return f"CAST({units} AS DOUBLE PRECISION) / {SCALE} = {column}"

    return (
        f"CAST(CASE WHEN {gives_back(rounded)} THEN {rounded} "
        f"WHEN {gives_back(f'{rounded} - 1')} THEN {rounded} - 1 "
        f"WHEN {gives_back(f'{rounded} + 1')} THEN {rounded} + 1 "
        f"ELSE {rounded} END AS BIGINT)"
    )
