"""The trading book: trades booked into books, as ingested batch by batch.

Owns ``trade_versions``, ``current_trades``, ``ingested_batches``, ``source_watermarks``,
``trading_books`` (each book's first trade), ``late_changes`` (what late, amended or
cancelled trades leave, as ingestion finds them) and the id dictionary ``book_keys`` and
``instrument_keys`` (``id_dictionary``: current_trades stores books and instruments as keys).
A batch's rejected rows go to the quarantine through ``quarantine._store_quarantine`` in the
same transaction. The snapshot stores read the late changes and first trades through
:func:`_late_changes` and :func:`_first_trades`, in their own transactions.
"""

import dataclasses
import logging

import numpy as np
import pandas as pd
import sqlalchemy as sa

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.warehouse.bulk import (
    _analyze_if_grown,
    _insert,
    _read,
    _rows_by_trade_id,
    _upsert,
)
from desk_pipeline.adapters.warehouse.codec import from_micros, now_micros, to_micros
from desk_pipeline.adapters.warehouse.engine import Store, _serialised
from desk_pipeline.adapters.warehouse.id_dictionary import (
    BOOK,
    INSTRUMENT,
    IdDictionary,
    _assign_keys,
    _dictionary,
)
from desk_pipeline.adapters.warehouse.quarantine import _store_quarantine
from desk_pipeline.adapters.warehouse.trade_batches import (
    _advance_watermark,
    _advancing,
    _any_between,
    _batch_digest,
    _conflict_quarantine,
    _ingested,
    _joined_ids,
    _last_rowid,
    _record_batch,
    _touched,
    _trade_rows,
    _trades_frame,
    _write_current,
    trades_from_keys,
)
from desk_pipeline.domain.positions.trades import split_conflicting_duplicates
from desk_pipeline.domain.schema import (
    CANCEL,
    KEYED_TRADE_DTYPES,
    TRADE_DTYPES,
    empty_frame,
)

log = logging.getLogger(__name__)
# The start of the warning a batch of late or corrected trades logs (folded by `desk backfill`).
LATE_TRADES = "late or corrected trades make stored snapshots stale"

# Books named in the warning that late changes made snapshots stale; the rest are counted.
LATE_BOOKS_SHOWN = 5


@dataclasses.dataclass(frozen=True)
class IngestResult:
    """What one batch did to the warehouse; received = accepted + quarantined."""

    source: str
    received: int
    accepted: int
    new_versions: int
    quarantined: int
    already_ingested: bool
    stale_books: tuple[str, ...]


def _late_changes(conn: sa.Connection) -> pd.DataFrame:
    """Every stored late change (``late_changes`` row), read in ``conn``'s transaction."""
    return _read(conn, sa.select(t.late_changes))


def _first_trades(conn: sa.Connection) -> pd.Series:
    """Each book's first trade time (µs) by book_id, read in ``conn``'s transaction."""
    return _read(conn, sa.select(t.trading_books)).set_index("book_id")["first_trade_us"]


class TradingBookStore(Store):
    """Ingested batches, every stored trade version, the latest of each, and late changes."""

    def ingest(
        self,
        source: str,
        received: int,
        trades: pd.DataFrame,
        rejected: pd.DataFrame,
        watermark: tuple[str, int] | None = None,
    ) -> IngestResult:
        """Store one batch atomically: new trade versions, the latest-version index, quarantine.

        Re-ingesting the same batch (same source and content) changes nothing. A version already
        stored with other content is quarantined as a conflicting duplicate. A version that
        changes a trade already covered by a stored snapshot writes a late change for its book.
        ``watermark`` (source key, sequence number) advances in the same transaction, so an
        incremental source never skips a batch that was not stored.
        """
        digest = _batch_digest(trades, rejected)
        stamp = now_micros()
        with self._transaction(f"ingest {source}") as conn:
            # Two first runs ingest the same new trades: the second must see the first's batch.
            _serialised(conn, "ingest")
            _advance_watermark(conn, watermark, stamp)
            seen = _ingested(conn, source, digest)
            if seen is not None:
                return IngestResult(source, received, seen[0], 0, seen[1], True, ())
            new, conflicts, stale_books = self._store_versions(conn, trades, source, stamp)
            conflict_rows = _conflict_quarantine(conflicts, source)
            quarantined = pd.concat([rejected, conflict_rows], ignore_index=True)
            _store_quarantine(conn, quarantined, stamp)
            accepted = len(trades) - len(conflicts)
            counts = {"received": received, "accepted": accepted, "quarantined": len(quarantined)}
            _record_batch(conn, source, digest, stamp, counts)
        log.info(
            "ingest %s: received %s, accepted %s (%s new versions), quarantined %s",
            source,
            received,
            accepted,
            len(new),
            len(quarantined),
        )
        return IngestResult(
            source, received, accepted, len(new), len(quarantined), False, tuple(stale_books)
        )

    def watermark(self, key: str) -> int | None:
        """The last sequence number stored from incremental source ``key``; None when none."""
        w = t.source_watermarks
        with self._transaction(f"watermark {key}") as conn:
            value = conn.execute(sa.select(w.c.watermark).where(w.c.source == key)).scalar()
        return None if value is None else int(value)

    def _store_versions(
        self, conn: sa.Connection, trades: pd.DataFrame, source: str, stamp: int
    ) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
        """Store the batch's new versions and advance current_trades to them.

        Returns:
            ``(new, conflicts, stale_books)``: the versions stored, the rows that conflict with a
            version stored before (or earlier in the batch), the books now marked stale.
        """
        stored = self._versions(conn, trades["trade_id"])
        new, conflicts = split_conflicting_duplicates(trades, reference=stored)
        mark = _last_rowid(conn, t.trade_versions)
        _insert(conn, t.trade_versions, _trade_rows(new, source=source, stamp=stamp))
        stale_books = self._advance_current(conn, new, stored, stamp, since_rowid=mark)
        _analyze_if_grown(conn, [t.trade_versions, t.current_trades], len(new))
        return new, conflicts, stale_books

    def _versions(self, conn: sa.Connection, trade_ids: pd.Series) -> pd.DataFrame:
        """The stored versions (TRADE_DTYPES) of these trade ids.

        On SQLite one probe of the ids' key range first: a batch of new trades (ids increase
        from day to day) has nothing stored in it and needs no per-id lookups. SQLite compares
        text by its UTF-8 bytes, the order of Python's ``min`` and ``max``; PostgreSQL compares
        by the database's collation, so there the ids are looked up directly (one query).
        """
        ids = trade_ids.unique()
        if len(ids) == 0 or (
            conn.dialect.name == "sqlite" and not _any_between(conn, min(ids), max(ids))
        ):
            return empty_frame(TRADE_DTYPES)
        return _trades_frame(_rows_by_trade_id(conn, t.trade_versions, list(ids)))

    def _advance_current(
        self,
        conn: sa.Connection,
        new: pd.DataFrame,
        stored: pd.DataFrame,
        stamp: int,
        *,
        since_rowid: int | None,
    ) -> list[str]:
        """Point current_trades at newer versions; mark snapshots that the change affects stale.

        ``stored`` holds the versions already stored of these trades: the latest of each is
        its current_trades row, so the table need not be read again. ``since_rowid``: the last
        trade_versions rowid before ``new`` was stored (SQLite; None elsewhere).
        """
        if new.empty:
            return []
        advancing = _advancing(new, stored)
        # Every new version's ids get keys: SQLite's _write_current copies every one of them.
        dictionaries = (
            _assign_keys(conn, BOOK, new["book_id"]),
            _assign_keys(conn, INSTRUMENT, new["instrument_id"]),
        )
        _write_current(conn, advancing, since_rowid, dictionaries)
        touched = _touched(advancing)
        _upsert(
            conn,
            t.trading_books,
            [
                {"book_id": b, "first_trade_us": int(us)}
                for b, us in touched.groupby("book_id")["time_us"].min().items()
            ],
            keys=["book_id"],
            older="first_trade_us",
        )
        return self._record_late_changes(conn, touched, stamp)

    def _record_late_changes(
        self, conn: sa.Connection, touched: pd.DataFrame, stamp: int
    ) -> list[str]:
        """Store a late change for each book touched before stored snapshots' coverage.

        ``touched``: book_id, time_us, trade_id (see :func:`_touched`). Returns the books.
        """
        earliest = touched.groupby("book_id").agg(from_time_us=("time_us", "min"))
        # Any book's: a stored day holds every book, so a book whose first trade arrives late
        # (it has no EOD of its own yet) still makes the stored days it belongs to stale.
        earliest["covered_us"] = self._covered_until(conn)
        late = earliest[earliest["from_time_us"] < earliest["covered_us"]]
        # Joined only for late books: joining every book's ids cost seconds per 100k trades.
        late_trades = touched[touched["book_id"].isin(late.index)]
        late = late.assign(trade_ids=late_trades.groupby("book_id")["trade_id"].agg(_joined_ids))
        changes = [
            {
                "book_id": book,
                "from_time_us": int(from_us),
                "arrived_at_us": stamp,
                "trade_ids": ids,
            }
            for book, from_us, ids in zip(
                late.index, late["from_time_us"], late["trade_ids"], strict=True
            )
        ]
        _insert(conn, t.late_changes, changes)
        if changes:
            # One line per batch, not per book: a backfill before the stored days makes every
            # book stale at once, and `desk backfill` shows warnings on stderr.
            first = min(changes, key=lambda c: c["from_time_us"])
            log.warning(
                LATE_TRADES + " for %d book(s) (%s%s); the earliest from %s (%s)",
                len(changes),
                ", ".join(c["book_id"] for c in changes[:LATE_BOOKS_SHOWN]),
                ", …" if len(changes) > LATE_BOOKS_SHOWN else "",
                from_micros(first["from_time_us"]).isoformat(),
                first["book_id"],
            )
        return [c["book_id"] for c in changes]

    def _covered_until(self, conn: sa.Connection) -> int:
        """The latest instant (µs) any stored snapshot, intraday or EOD, covers; -1 if none.

        The snapshot stores own the answer (``position_snapshot._covered_until``). They read
        this store's late changes, so this store cannot import them: the repository that joins
        the stores supplies it.
        """
        raise NotImplementedError("a TradingBookStore needs the snapshot stores' coverage")

    def trades_since(self, bounds: pd.Series, end: pd.Timestamp) -> pd.DataFrame:
        """Effective trades of each book from its bound (µs, inclusive) to ``end`` (exclusive).

        Args:
            bounds: int64 µs by book_id; a book without a bound has no trades read.
            end: tz-aware.

        Returns:
            KEYED_TRADE_DTYPES (see :func:`trade_batches.trades_from_keys`), in stored order.
        """
        if bounds.empty:
            return empty_frame(KEYED_TRADE_DTYPES)
        rows, books, instruments = self._current_trades(
            "trades_since", int(bounds.min()), to_micros(end)
        )
        # Each row's book bound, looked up by key: no id is read per row.
        floor = books.by_key(bounds, missing=np.iinfo("int64").max)[
            rows["book_key"].to_numpy(dtype="int64")
        ]
        return trades_from_keys(rows[rows["trade_time_us"] >= floor], books, instruments)

    def trades_between(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Effective trades with ``start <= trade_time < end`` (KEYED_TRADE_DTYPES)."""
        rows, books, instruments = self._current_trades(
            "trades_between", to_micros(start), to_micros(end)
        )
        return trades_from_keys(rows, books, instruments)

    def _current_trades(
        self, operation: str, start_us: int, end_us: int
    ) -> tuple[pd.DataFrame, IdDictionary, IdDictionary]:
        """current_trades rows not cancelled with start_us <= trade_time_us < end_us.

        Returns:
            ``(rows, books, instruments)``: the rows as stored (keys, times in µs) and the
            dictionaries, read after the rows in the same transaction: keys are only ever
            added, so they hold every key the rows name.
        """
        c = t.current_trades.c
        query = sa.select(t.current_trades).where(
            c.trade_time_us >= start_us, c.trade_time_us < end_us, c.status != CANCEL
        )
        with self._transaction(operation) as conn:
            rows = _read(conn, query, raw=True)
            return rows, _dictionary(conn, BOOK), _dictionary(conn, INSTRUMENT)

    def all_trade_versions(self) -> pd.DataFrame:
        """Every stored version of every trade (checks and reconciliation)."""
        with self._transaction("all_trade_versions") as conn:
            return _trades_frame(_read(conn, sa.select(t.trade_versions)))

    def ingested_batches(self) -> pd.DataFrame:
        """Every ingested batch with its received / accepted / quarantined counts."""
        with self._transaction("ingested_batches") as conn:
            return _read(conn, sa.select(t.ingested_batches))

    def ingested_sources(self, prefix: str) -> set[str]:
        """The source of every ingested batch whose source starts with ``prefix``.

        A file source asks once per run which of its files (named by their content) it need
        not read again: one query, one string per batch.
        """
        b = t.ingested_batches.c
        query = sa.select(b.source).where(b.source.startswith(prefix, autoescape=True)).distinct()
        with self._transaction("ingested_sources") as conn:
            return set(conn.execute(query).scalars())

    def late_changes(self) -> pd.DataFrame:
        """Every late change: book, earliest affected time, when it arrived, why (trade ids)."""
        with self._transaction("late_changes") as conn:
            return _late_changes(conn)
