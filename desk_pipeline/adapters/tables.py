"""The warehouse schema: SQLAlchemy Core tables on one MetaData (Alembic migrates it)."""

import sqlalchemy as sa

metadata = sa.MetaData()

# Times are stored as integer microseconds since the Unix epoch, UTC: exact, comparable and
# fast on SQLite and PostgreSQL alike. Business dates are ISO strings (YYYY-MM-DD).
Micros = sa.BigInteger
# Positions the engine rolls from (EOD and intraday snapshots) store their quantity as integer
# micro-units (domain.precision): exact, where a float cannot tell micro-units apart above
# 2**33 units and a position rolled from it would drift from its recomputation. Trades keep
# float quantities: at most MAX_ABS_QUANTITY units, their float converts back exactly.
MicroUnits = sa.BigInteger
BusinessDate = sa.String(10)
Id = sa.String(64)

trade_versions = sa.Table(
    "trade_versions",
    metadata,
    sa.Column("trade_id", Id, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("book_id", Id, nullable=False),
    sa.Column("instrument_id", Id, nullable=False),
    sa.Column("quantity", sa.Float, nullable=False),
    sa.Column("price", sa.Float, nullable=False),
    sa.Column("trade_time_us", Micros, nullable=False),
    sa.Column("source", sa.String(512), nullable=False),
    sa.Column("ingested_at_us", Micros, nullable=False),
)

# The id dictionary: an integer key for every book and instrument id that ever arrived, given
# by the ingestion that first stores the id (keys follow the largest, under the ingestion lock)
# and never changed or reused: append-only, so a key read once names the same id forever.
book_keys = sa.Table(
    "book_keys",
    metadata,
    sa.Column("book_key", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("book_id", Id, nullable=False, unique=True),
)

instrument_keys = sa.Table(
    "instrument_keys",
    metadata,
    sa.Column("instrument_key", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("instrument_id", Id, nullable=False, unique=True),
)

# The latest version of every trade_id, maintained on ingestion so that snapshots read one
# indexed range instead of resolving versions over the whole history. Books and instruments are
# stored as their keys: a read hands the engine categoricals, with no id string per row.
current_trades = sa.Table(
    "current_trades",
    metadata,
    sa.Column("trade_id", Id, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("book_key", sa.Integer, nullable=False),
    sa.Column("instrument_key", sa.Integer, nullable=False),
    sa.Column("quantity", sa.Float, nullable=False),
    sa.Column("price", sa.Float, nullable=False),
    sa.Column("trade_time_us", Micros, nullable=False),
    sa.Index("ix_current_trades_time", "trade_time_us"),
)

ingested_batches = sa.Table(
    "ingested_batches",
    metadata,
    sa.Column("source", sa.String(512), primary_key=True),
    sa.Column("content_sha256", sa.String(64), primary_key=True),
    sa.Column("ingested_at_us", Micros, nullable=False),
    sa.Column("received", sa.Integer, nullable=False),
    sa.Column("accepted", sa.Integer, nullable=False),
    sa.Column("quarantined", sa.Integer, nullable=False),
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column("source", sa.String(512), nullable=False),
    # 1-based row of a file, or the upstream's sequence number for a sql:<url> source (bigint).
    sa.Column("row_number", sa.BigInteger, nullable=False),
    sa.Column("trade_id", sa.Text, nullable=False),
    sa.Column("reason_code", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("raw", sa.Text, nullable=False),
    sa.Column("quarantined_at_us", Micros, nullable=False),
    # One row per distinct rejected input (domain.positions.trades.rejection_fingerprints); NULL
    # for rows quarantined before revision 0006, which are kept as they were.
    sa.Column("fingerprint", sa.String(64), nullable=True),
    sa.Index("ux_quarantine_fingerprint", "fingerprint", unique=True),
)

# Every source a rejected input arrived in (first arrival's row number): a renamed copy or a
# re-sent file adds a line here, not a second quarantine row.
quarantine_arrivals = sa.Table(
    "quarantine_arrivals",
    metadata,
    sa.Column("quarantine_id", sa.Integer, sa.ForeignKey("quarantine.id"), primary_key=True),
    sa.Column("source", sa.String(512), primary_key=True),
    sa.Column("row_number", sa.BigInteger, nullable=False),
    sa.Column("arrived_at_us", Micros, nullable=False),
)

# Append-only: a late, amended or cancelled trade makes every snapshot of its book taken after
# `from_time_us` and computed before `arrived_at_us` (when it was ingested) stale. Never updated
# in place, so a late change written while a snapshot is being computed cannot be lost.
late_changes = sa.Table(
    "late_changes",
    metadata,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column("book_id", Id, nullable=False),
    sa.Column("from_time_us", Micros, nullable=False),
    sa.Column("arrived_at_us", Micros, nullable=False),
    sa.Column("trade_ids", sa.Text, nullable=False),
    sa.Index("ix_late_changes_book", "book_id", "from_time_us"),
)

intraday_windows = sa.Table(
    "intraday_windows",
    metadata,
    sa.Column("window_end_us", Micros, primary_key=True),
    sa.Column("computed_at_us", Micros, nullable=False),
)

intraday_positions = sa.Table(
    "intraday_positions",
    metadata,
    sa.Column("window_end_us", Micros, primary_key=True),
    sa.Column("book_id", Id, primary_key=True),
    sa.Column("instrument_id", Id, primary_key=True),
    sa.Column("quantity_micro_units", MicroUnits, nullable=False),
    sa.Column("avg_price", sa.Float, nullable=False),
    sa.Column("realized_pnl", sa.Float, nullable=False),
)

# One row per (book, business day): which snapshot is the day's end-of-day (keep-last rule).
eod_snapshots = sa.Table(
    "eod_snapshots",
    metadata,
    sa.Column("book_id", Id, primary_key=True),
    sa.Column("business_date", BusinessDate, primary_key=True),
    sa.Column("snapshot_id", sa.String(36), nullable=False, unique=True),
    sa.Column("as_of_us", Micros, nullable=False),
    sa.Column("computed_at_us", Micros, nullable=False),
    sa.Column("position_count", sa.Integer, nullable=False),
    # Digest of the rows: a recomputation that finds the same positions writes nothing.
    sa.Column("content_digest", sa.String(16), nullable=False),
)

eod_positions = sa.Table(
    "eod_positions",
    metadata,
    sa.Column("snapshot_id", sa.String(36), primary_key=True),
    sa.Column("instrument_id", Id, primary_key=True),
    sa.Column("book_id", Id, nullable=False),
    sa.Column("business_date", BusinessDate, nullable=False),
    sa.Column("quantity_micro_units", MicroUnits, nullable=False),
    sa.Column("avg_price", sa.Float, nullable=False),
    sa.Column("realized_pnl", sa.Float, nullable=False),
    sa.Index("ix_eod_positions_day_book", "business_date", "book_id"),
)

collateral_rankings = sa.Table(
    "collateral_rankings",
    metadata,
    sa.Column("book_id", Id, primary_key=True),
    sa.Column("business_date", BusinessDate, primary_key=True),
    sa.Column("instrument_id", Id, primary_key=True),
    sa.Column("snapshot_id", sa.String(36), nullable=False),
    sa.Column("as_of_us", Micros, nullable=False),
    sa.Column("rank", sa.Integer, nullable=True),
    sa.Column("quantity", sa.Float, nullable=False),
    sa.Column("price", sa.Float, nullable=True),
    sa.Column("fx_rate", sa.Float, nullable=True),
    sa.Column("haircut", sa.Float, nullable=True),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("eligible", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Index("ix_collateral_rankings_day", "business_date"),
)

# Each EOD position row valued at its day's marks, keyed like eod_positions by the snapshot it
# values: a reader joins on snapshot_id, so a valuation of a superseded snapshot is never shown.
eod_valuations = sa.Table(
    "eod_valuations",
    metadata,
    sa.Column("snapshot_id", sa.String(36), primary_key=True),
    sa.Column("instrument_id", Id, primary_key=True),
    sa.Column("book_id", Id, nullable=False),
    sa.Column("business_date", BusinessDate, nullable=False),
    sa.Column("price", sa.Float, nullable=True),
    sa.Column("price_date", BusinessDate, nullable=True),
    sa.Column("stale_price", sa.Boolean, nullable=False),
    sa.Column("currency", sa.String(3), nullable=True),
    sa.Column("base_currency", sa.String(3), nullable=True),
    sa.Column("fx_rate", sa.Float, nullable=True),
    sa.Column("market_value", sa.Float, nullable=True),
    sa.Column("market_value_base", sa.Float, nullable=True),
    sa.Column("unrealized_pnl", sa.Float, nullable=True),
    sa.Column("unrealized_pnl_base", sa.Float, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Index("ix_eod_valuations_day", "business_date"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column("event_id", sa.String(36), nullable=False, unique=True),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("book_id", Id, nullable=False),
    sa.Column("business_date", BusinessDate, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at_us", Micros, nullable=False),
    sa.Column("published_at_us", Micros, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    # Set when the relay parks an event no attempt can ever publish (its book's later events
    # wait behind it); cleared by `desk relay --retry-parked`.
    sa.Column("parked_reason", sa.Text, nullable=True),
    sa.Column("parked_at_us", Micros, nullable=True),
    sa.Index("ix_outbox_pending", "published_at_us", "id"),
)

# Every book that ever traded, with its first trade: where a recomputation from scratch starts.
trading_books = sa.Table(
    "trading_books",
    metadata,
    sa.Column("book_id", Id, primary_key=True),
    sa.Column("first_trade_us", Micros, nullable=False),
)

# Reference data and marks, as of the latest ingestion from the source.
instruments = sa.Table(
    "instruments",
    metadata,
    sa.Column("instrument_id", Id, primary_key=True),
    sa.Column("name", sa.Text, nullable=True),
    sa.Column("asset_class", sa.String(32), nullable=True),
    sa.Column("issuer_type", sa.String(32), nullable=True),
    sa.Column("issuer", sa.Text, nullable=True),
    sa.Column("rating", sa.String(8), nullable=True),
    sa.Column("maturity_date", BusinessDate, nullable=True),
    sa.Column("currency", sa.String(3), nullable=True),
)

prices = sa.Table(
    "prices",
    metadata,
    sa.Column("instrument_id", Id, primary_key=True),
    sa.Column("price_date", BusinessDate, primary_key=True),
    sa.Column("price", sa.Float, nullable=False),
    sa.Index("ix_prices_date", "price_date"),
)

books = sa.Table(
    "books",
    metadata,
    sa.Column("book_id", Id, primary_key=True),
    sa.Column("base_currency", sa.String(3), nullable=False),
    sa.Column("holding_period_days", sa.Integer, nullable=False),
)

fx_rates = sa.Table(
    "fx_rates",
    metadata,
    sa.Column("currency", sa.String(3), primary_key=True),
    sa.Column("rate_date", BusinessDate, primary_key=True),
    sa.Column("usd_per_unit", sa.Float, nullable=False),
)

# A stored mark (kind `price`: an instrument's price; `fx`: a currency's USD rate) that changed,
# or a new one dated on or before the latest stored EOD: the valuations and rankings of the days
# that read it (domain.marks.days_using_marks) are stale until a run restates them and sets
# `restated_at_us`. Only rows of a change whose restatement read the stored marks are set.
mark_changes = sa.Table(
    "mark_changes",
    metadata,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("key", Id, nullable=False),
    sa.Column("mark_date", BusinessDate, nullable=False),
    sa.Column("arrived_at_us", Micros, nullable=False),
    sa.Column("restated_at_us", Micros, nullable=True),
    sa.Index("ix_mark_changes_open", "restated_at_us"),
)

# The time zone the warehouse's business days are cut in: one row, written by the first process
# that opens the warehouse; every process checks its DESK_TIMEZONE against it.
desk_calendar = sa.Table(
    "desk_calendar",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("recorded_at_us", Micros, nullable=False),
    sa.CheckConstraint("id = 1", name="ck_desk_calendar_one_row"),
)

# How far an incremental source (sql:<url>) has been read: its last ingestion sequence number.
source_watermarks = sa.Table(
    "source_watermarks",
    metadata,
    sa.Column("source", sa.String(512), primary_key=True),
    sa.Column("watermark", sa.BigInteger, nullable=False),
    sa.Column("updated_at_us", Micros, nullable=False),
)

# Events a consumer has applied, so a redelivered event is applied once.
inbox = sa.Table(
    "inbox",
    metadata,
    sa.Column("consumer", sa.String(128), primary_key=True),
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("processed_at_us", Micros, nullable=False),
)
