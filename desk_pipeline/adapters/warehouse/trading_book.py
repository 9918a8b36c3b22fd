"""The trading book: trades booked into books, as ingested batch by batch.

Owns ``trade_versions``, ``current_trades``, ``ingested_batches``, ``source_watermarks``,
``trading_books`` (each book's first trade) and ``late_changes`` (what late, amended or
cancelled trades leave, as ingestion finds them). A batch's rejected rows go to the quarantine
through ``quarantine._store_quarantine`` in the same transaction. The snapshot stores read the
late changes and first trades through :func:`_late_changes` and :func:`_first_trades`, in their
own transactions.
"""

import dataclasses
import hashlib
import logging
from collections.abc import Iterable

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
from desk_pipeline.adapters.warehouse.quarantine import _store_quarantine
from desk_pipeline.domain.positions.trades import latest_versions, split_conflicting_duplicates
from desk_pipeline.domain.schema import (
    CANCEL,
    QUARANTINE_DTYPES,
    TRADE_COLUMNS,
    TRADE_DTYPES,
    conform,
    empty_frame,
)

log = logging.getLogger(__name__)


def content_digest(frame: pd.DataFrame) -> str:
    """A stable digest of a frame's content, naming a batch for idempotent re-ingestion."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


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
        digest = content_digest(trades) + content_digest(rejected)
        digest = hashlib.sha256(digest.encode()).hexdigest()
        stamp = now_micros()
        with self._transaction(f"ingest {source}") as conn:
            # Two first runs ingest the same new trades: the second must see the first's batch.
            _serialised(conn, "ingest")
            if watermark is not None:
                _upsert(
                    conn,
                    t.source_watermarks,
                    [{"source": watermark[0], "watermark": watermark[1], "updated_at_us": stamp}],
                    keys=["source"],
                    newer="watermark",
                )
            seen = conn.execute(
                sa.select(t.ingested_batches.c.accepted, t.ingested_batches.c.quarantined).where(
                    t.ingested_batches.c.source == source,
                    t.ingested_batches.c.content_sha256 == digest,
                )
            ).first()
            if seen is not None:
                return IngestResult(source, received, seen[0], 0, seen[1], True, ())
            stored = self._versions(conn, trades["trade_id"].unique())
            new, conflicts = split_conflicting_duplicates(trades, reference=stored)
            conflict_rows = _conflict_quarantine(conflicts, source)
            quarantined = pd.concat([rejected, conflict_rows], ignore_index=True)
            _insert(conn, t.trade_versions, _trade_rows(new, source=source, stamp=stamp))
            stale_books = self._advance_current(conn, new, stored, stamp)
            _analyze_if_grown(conn, [t.trade_versions, t.current_trades], len(new))
            _store_quarantine(conn, quarantined, stamp)
            accepted = len(trades) - len(conflicts)
            conn.execute(
                t.ingested_batches.insert(),
                {
                    "source": source,
                    "content_sha256": digest,
                    "ingested_at_us": stamp,
                    "received": received,
                    "accepted": accepted,
                    "quarantined": len(quarantined),
                },
            )
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

    def _versions(self, conn: sa.Connection, trade_ids: Iterable[str]) -> pd.DataFrame:
        return _trades_frame(_rows_by_trade_id(conn, t.trade_versions, list(trade_ids)))

    def _advance_current(
        self, conn: sa.Connection, new: pd.DataFrame, stored: pd.DataFrame, stamp: int
    ) -> list[str]:
        """Point current_trades at newer versions; mark snapshots that the change affects stale.

        ``stored`` holds the versions already stored of these trades: the latest of each is
        its current_trades row, so the table need not be read again.
        """
        if new.empty:
            return []
        incoming = latest_versions(new)
        current = _trade_rows(latest_versions(stored), source=None, stamp=None)
        merged = incoming.merge(
            current[["trade_id", "version", "book_id", "trade_time_us"]].rename(
                columns={"version": "old_version", "book_id": "old_book", "trade_time_us": "old_us"}
            ),
            on="trade_id",
            how="left",
        )
        advancing = merged[merged["version"] > merged["old_version"].fillna(0)]
        rows = _trade_rows(advancing[list(TRADE_COLUMNS)], source=None, stamp=None)
        # A trade seen for the first time has no row to conflict with: a plain bulk insert,
        # cheaper than an upsert (on PostgreSQL, no staging table).
        first_seen = advancing["old_version"].isna().to_numpy()
        _insert(conn, t.current_trades, rows[first_seen])
        _upsert(conn, t.current_trades, rows[~first_seen], keys=["trade_id"], newer="version")

        # Both the new version's book/time and the replaced version's are affected.
        touched = pd.concat(
            [
                pd.DataFrame(
                    {
                        "book_id": advancing["book_id"],
                        "time_us": rows["trade_time_us"].to_numpy(),
                        "trade_id": advancing["trade_id"],
                    }
                ),
                pd.DataFrame(
                    {
                        "book_id": advancing["old_book"],
                        "time_us": advancing["old_us"],
                        "trade_id": advancing["trade_id"],
                    }
                ).dropna(),
            ]
        )
        touched["time_us"] = touched["time_us"].astype("int64")
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
        for change in changes:
            log.warning(
                "late or corrected trades for book %s from %s make stored snapshots stale",
                change["book_id"],
                from_micros(change["from_time_us"]),
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
        """Effective trades of each book from its bound (µs, inclusive) to ``end`` (exclusive)."""
        if bounds.empty:
            return empty_frame(TRADE_DTYPES)
        c = t.current_trades.c
        query = sa.select(t.current_trades).where(
            c.trade_time_us >= int(bounds.min()),
            c.trade_time_us < to_micros(end),
            c.status != CANCEL,
        )
        with self._transaction("trades_since") as conn:
            rows = _read(conn, query, raw=True)
        floor = rows["book_id"].map(bounds).fillna(np.iinfo("int64").max).astype("int64")
        return _trades_frame(rows[rows["trade_time_us"] >= floor])

    def trades_between(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Effective trades with ``start <= trade_time < end``."""
        c = t.current_trades.c
        query = sa.select(t.current_trades).where(
            c.trade_time_us >= to_micros(start),
            c.trade_time_us < to_micros(end),
            c.status != CANCEL,
        )
        with self._transaction("trades_between") as conn:
            return _trades_frame(_read(conn, query, raw=True))

    def all_trade_versions(self) -> pd.DataFrame:
        """Every stored version of every trade (checks and reconciliation)."""
        with self._transaction("all_trade_versions") as conn:
            return _trades_frame(_read(conn, sa.select(t.trade_versions)))

    def ingested_batches(self) -> pd.DataFrame:
        """Every ingested batch with its received / accepted / quarantined counts."""
        with self._transaction("ingested_batches") as conn:
            return _read(conn, sa.select(t.ingested_batches))

    def late_changes(self) -> pd.DataFrame:
        """Every late change: book, earliest affected time, when it arrived, why (trade ids)."""
        with self._transaction("late_changes") as conn:
            return _late_changes(conn)


def _trade_rows(trades: pd.DataFrame, *, source: str | None, stamp: int | None) -> pd.DataFrame:
    frame = trades.loc[:, list(TRADE_COLUMNS)].copy()
    frame["trade_time_us"] = frame.pop("trade_time").dt.tz_convert("UTC").astype("int64") // 1000
    frame["trade_time_us"] = frame["trade_time_us"].astype("int64")
    if source is not None:
        frame["source"] = source
        frame["ingested_at_us"] = stamp
    return frame


def _trades_frame(rows: pd.DataFrame) -> pd.DataFrame:
    if rows.empty:
        return empty_frame(TRADE_DTYPES)
    frame = rows.assign(trade_time=from_micros(rows["trade_time_us"].to_numpy(dtype="int64")))
    return conform(frame, TRADE_DTYPES)


def _conflict_quarantine(conflicts: pd.DataFrame, source: str) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "source": source,
            "row_number": conflicts.index.to_numpy(dtype="int64") if len(conflicts) else [],
            "trade_id": conflicts["trade_id"].to_numpy(),
            "reason_code": "conflicting_duplicate",
            "reason": [
                f"trade {tid} version {v} is already stored with different content"
                for tid, v in zip(conflicts["trade_id"], conflicts["version"], strict=True)
            ],
            "raw": conflicts.astype(str).to_json(orient="records", lines=True).splitlines()
            if len(conflicts)
            else [],
        }
    )
    return conform(frame, QUARANTINE_DTYPES)


def _joined_ids(ids: pd.Series) -> str:
    """Trade ids behind a late change, for operators; capped so a bulk correction stays small."""
    return ",".join(sorted(set(ids)))[:10_000]
