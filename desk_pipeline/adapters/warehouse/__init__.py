"""The warehouse: every read and write of trades, snapshots, rankings, quarantine and outbox.

One store per aggregate, each in its own module; :class:`PositionRepository` joins them:

- ``engine``: engine, Alembic migrations, locks, one transaction per operation, errors.
- ``bulk``: inserts, upserts, bulk COPY, chunked IN lists and reads that every store uses.
- ``codec``: timestamps to and from stored microseconds, frames to rows.
- ``trades``: ingestion, trade versions, current trades, watermarks, stale marks on ingestion.
- ``quarantine``: rejected inputs of trades and of reference data.
- ``snapshots``: intraday snapshots, stored end-of-day snapshots, stale marks, opening state.
- ``eod``: end-of-day writes under the keep-last rule, with their outbox events.
- ``collateral``: valuations and rankings.
- ``reference``: instruments, books, prices and FX rates.
- ``events``: the outbox the relay publishes, parked events, the consumers' inbox.
"""

from desk_pipeline.adapters.warehouse.bulk import ANALYZE_GROWTH, CHUNK
from desk_pipeline.adapters.warehouse.codec import from_micros, micros_of, now_micros, to_micros
from desk_pipeline.adapters.warehouse.collateral import CollateralStore
from desk_pipeline.adapters.warehouse.engine import (
    MIGRATIONS,
    NoWarehouseError,
    Store,
    WarehouseError,
    WarehouseUnreachableError,
    require_warehouse,
    schema_head,
)
from desk_pipeline.adapters.warehouse.eod import EMPTY_DIGEST, EodStore, EodWrite
from desk_pipeline.adapters.warehouse.events import EventStore
from desk_pipeline.adapters.warehouse.quarantine import QuarantineStore
from desk_pipeline.adapters.warehouse.reference import ReferenceData, ReferenceStore
from desk_pipeline.adapters.warehouse.snapshots import Opening, SnapshotStore
from desk_pipeline.adapters.warehouse.trades import IngestResult, TradeStore, content_digest

__all__ = [
    "ANALYZE_GROWTH",
    "CHUNK",
    "EMPTY_DIGEST",
    "MIGRATIONS",
    "CollateralStore",
    "EodStore",
    "EodWrite",
    "EventStore",
    "IngestResult",
    "NoWarehouseError",
    "Opening",
    "PositionRepository",
    "QuarantineStore",
    "ReferenceData",
    "ReferenceStore",
    "SnapshotStore",
    "Store",
    "TradeStore",
    "WarehouseError",
    "WarehouseUnreachableError",
    "content_digest",
    "from_micros",
    "micros_of",
    "now_micros",
    "require_warehouse",
    "schema_head",
    "to_micros",
]


class PositionRepository(
    TradeStore,
    QuarantineStore,
    CollateralStore,
    SnapshotStore,
    EodStore,
    ReferenceStore,
    EventStore,
):
    """Trades, snapshots, rankings, quarantine and outbox in one SQLite or PostgreSQL database."""
