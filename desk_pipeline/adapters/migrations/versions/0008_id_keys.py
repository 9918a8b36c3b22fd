"""id keys: current_trades stores books and instruments as integer keys of an id dictionary

Trade ids arrive as strings and current_trades stored book_id and instrument_id as they came,
so every read handed the position engine a million Python strings to hash. The warehouse now
keeps a dictionary, book_keys and instrument_keys (an integer key per id, given once, never
changed), and current_trades stores the keys; trade_versions, the record of what arrived,
keeps the strings. Upgrading gives every id stored in trade_versions a key (in id order) and
rebuilds current_trades with the keys; downgrading rebuilds it with the ids and drops the
dictionary. Rows are kept.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 01:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# (dictionary table, key column, id column) of each kind of id current_trades refers to.
DICTIONARIES = (
    ("book_keys", "book_key", "book_id"),
    ("instrument_keys", "instrument_key", "instrument_id"),
)
KEYS = ("book_key", "instrument_key")
IDS = ("book_id", "instrument_id")


def upgrade() -> None:
    for table, key, name in DICTIONARIES:
        op.create_table(
            table,
            sa.Column(key, sa.Integer(), autoincrement=False, nullable=False),
            sa.Column(name, sa.String(length=64), nullable=False),
            sa.PrimaryKeyConstraint(key),
            sa.UniqueConstraint(name),
        )
        # Every id ever stored, whether or not a current version still names it, as ingestion
        # gives a key to the ids of every version it stores.
        op.execute(
            f"INSERT INTO {table} ({key}, {name}) SELECT row_number() OVER (ORDER BY {name}), "
            f"{name} FROM (SELECT DISTINCT {name} FROM trade_versions) AS ids"
        )
    _rebuild_current_trades(sa.Integer(), new=KEYS, old=IDS)


def downgrade() -> None:
    _rebuild_current_trades(sa.String(length=64), new=IDS, old=KEYS)
    for table, _, _ in DICTIONARIES:
        op.drop_table(table)


def _rebuild_current_trades(
    kind: sa.types.TypeEngine, *, new: tuple[str, str], old: tuple[str, str]
) -> None:
    """Replace current_trades by a copy naming the book and instrument by ``new`` columns.

    ``old`` are the columns the table has now; the copy joins them to the dictionary. A copy,
    not columns altered in place: SQLite would copy the table anyway (batch mode), and on
    PostgreSQL an UPDATE of every row would leave as many dead ones.
    """
    op.create_table(
        "current_trades_rebuilt",
        sa.Column("trade_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column(new[0], kind, nullable=False),
        sa.Column(new[1], kind, nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("trade_time_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("trade_id"),
    )
    kept = ("trade_id", "version", "status", "quantity", "price", "trade_time_us")
    op.execute(
        f"INSERT INTO current_trades_rebuilt ({', '.join(kept)}, {new[0]}, {new[1]}) "
        f"SELECT {', '.join(f'c.{c}' for c in kept)}, b.{new[0]}, i.{new[1]} "
        f"FROM current_trades AS c "
        f"JOIN book_keys AS b ON b.{old[0]} = c.{old[0]} "
        f"JOIN instrument_keys AS i ON i.{old[1]} = c.{old[1]}"
    )
    op.drop_table("current_trades")  # and its index
    op.rename_table("current_trades_rebuilt", "current_trades")
    op.create_index("ix_current_trades_time", "current_trades", ["trade_time_us"])
    if op.get_bind().dialect.name == "postgresql":
        # PostgreSQL named the primary key after the table it was created as; SQLite renames
        # its automatic index with the table.
        op.execute(
            "ALTER TABLE current_trades RENAME CONSTRAINT current_trades_rebuilt_pkey "
            "TO current_trades_pkey"
        )
