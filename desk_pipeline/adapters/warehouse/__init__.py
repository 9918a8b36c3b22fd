"""The warehouse: every read and write of trades, snapshots, rankings, quarantine and outbox.

One store per aggregate of the domain, each owning its tables (``desk_pipeline.adapters.tables``)
and touching no other; :class:`PositionRepository` joins them and is what callers use:

- ``trading_book``: :class:`TradingBookStore`, trades booked into books. Owns trade_versions,
  current_trades, ingested_batches, source_watermarks, trading_books, late_changes and the id
  dictionary (book_keys, instrument_keys); its ingestion steps are in ``trade_batches``, the
  dictionary in ``id_dictionary`` (current_trades stores books and instruments as its keys,
  and reads return them as categoricals: :func:`trades_from_keys`).
- ``position_snapshot``: :class:`PositionSnapshotStore`, the intraday snapshots and the opening
  state. Owns intraday_windows and intraday_positions.
- ``daily_book_position`` and ``keep_last``: :class:`DailyBookPositionStore`, each book's stored
  end-of-day per day, written under the keep-last rule. Owns eod_snapshots and eod_positions.
- ``collateral_ranking``: :class:`CollateralRankingStore`, rankings and EOD valuations. Owns
  collateral_rankings and eod_valuations.
- ``reference``: :class:`ReferenceStore`, instruments, books, prices and FX rates.
- ``quarantine``: :class:`QuarantineStore`, rejected inputs of trades and of reference data.
  Owns quarantine and quarantine_arrivals.
- ``outbox``: :class:`PositionSnapshotCreatedOutbox`, the events the relay publishes, parked
  events, the consumers' inbox. Owns outbox and inbox.
- ``business_calendar``: :class:`BusinessCalendarStore`, the time zone the warehouse's business
  days are cut in, recorded once and checked by every process. Owns desk_calendar.

A write that spans two aggregates runs in one transaction: the owning module exposes a function
that takes the connection and the other store calls it (an EOD write and its outbox events, a
ranking locking the current EODs, ingestion's quarantine). ``unit/test_table_ownership.py``
holds the map and fails when a store references a table it does not own. Shared machinery:

- ``engine``: engine, Alembic migrations, locks, one transaction per operation, errors.
- ``bulk``: inserts, upserts, bulk COPY, chunked IN lists and reads that every store uses.
- ``codec``: timestamps to and from stored microseconds, frames to rows.
"""

import functools
from pathlib import Path

import sqlalchemy as sa

from desk_pipeline.adapters.warehouse.bulk import ANALYZE_GROWTH, CHUNK
from desk_pipeline.adapters.warehouse.business_calendar import (
    BusinessCalendarStore,
    TimezoneMismatchError,
)
from desk_pipeline.adapters.warehouse.codec import from_micros, micros_of, now_micros, to_micros
from desk_pipeline.adapters.warehouse.collateral_ranking import CollateralRankingStore
from desk_pipeline.adapters.warehouse.daily_book_position import DailyBookPositionStore
from desk_pipeline.adapters.warehouse.engine import (
    MIGRATIONS,
    NoWarehouseError,
    Store,
    WarehouseError,
    WarehouseUnreachableError,
    require_warehouse,
    schema_head,
)
from desk_pipeline.adapters.warehouse.id_dictionary import IdDictionary
from desk_pipeline.adapters.warehouse.keep_last import EodWrite
from desk_pipeline.adapters.warehouse.outbox import PositionSnapshotCreatedOutbox
from desk_pipeline.adapters.warehouse.position_snapshot import Opening, PositionSnapshotStore
from desk_pipeline.adapters.warehouse.position_snapshot import (
    _covered_until as _snapshots_cover_until,
)
from desk_pipeline.adapters.warehouse.quarantine import QuarantineStore
from desk_pipeline.adapters.warehouse.reference import ReferenceData, ReferenceStore
from desk_pipeline.adapters.warehouse.trade_batches import trades_from_keys
from desk_pipeline.adapters.warehouse.trading_book import IngestResult, TradingBookStore
from desk_pipeline.domain.marks import days_using_marks

__all__ = [
    "ANALYZE_GROWTH",
    "CHUNK",
    "MIGRATIONS",
    "BusinessCalendarStore",
    "CollateralRankingStore",
    "DailyBookPositionStore",
    "EodWrite",
    "IdDictionary",
    "IngestResult",
    "NoWarehouseError",
    "Opening",
    "PositionRepository",
    "PositionSnapshotCreatedOutbox",
    "PositionSnapshotStore",
    "QuarantineStore",
    "ReferenceData",
    "ReferenceStore",
    "Store",
    "TimezoneMismatchError",
    "TradingBookStore",
    "WarehouseError",
    "WarehouseUnreachableError",
    "from_micros",
    "micros_of",
    "now_micros",
    "open_repository",
    "require_warehouse",
    "schema_head",
    "to_micros",
    "trades_from_keys",
]


class PositionRepository(
    TradingBookStore,
    QuarantineStore,
    PositionSnapshotStore,
    DailyBookPositionStore,
    CollateralRankingStore,
    ReferenceStore,
    PositionSnapshotCreatedOutbox,
    BusinessCalendarStore,
):
    """Trades, snapshots, rankings, quarantine and outbox in one SQLite or PostgreSQL database."""

    def _covered_until(self, conn: sa.Connection) -> int:
        # Ingestion (the trading book) asks how far stored snapshots reach; the snapshot
        # stores answer, and they import the trading book, so the answer is wired here.
        return _snapshots_cover_until(conn)

    def days_stale_by_marks(self) -> tuple[list[str], list[int]]:
        """Stored days whose valuation and ranking read a changed mark no run has restated.

        Returns:
            ``(days, ids)``: the YYYY-MM-DD days (``domain.marks.days_using_marks`` over every
            day with a stored EOD), ascending, and the ids of the open mark changes read.
        """
        changes, marks = self.open_mark_changes()
        if changes.empty:
            return [], []
        # A price and an FX rate never share a key: the kind is part of it.
        changed, stored = (f.assign(key=f["kind"] + ":" + f["key"]) for f in (changes, marks))
        days = days_using_marks(changed, stored, self.eod_headers()["business_date"])
        return days, [int(i) for i in changes["id"]]


@functools.cache
def open_repository(url: str) -> PositionRepository:
    """The repository over the warehouse at ``url``, migrated; one per URL and process.

    One engine and one migration check per process, however many assets or requests use it.
    A SQLite file's folder is created; the file itself by the migration.

    Raises:
        WarehouseError: the database cannot be reached or migrated.
    """
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return PositionRepository(url)
