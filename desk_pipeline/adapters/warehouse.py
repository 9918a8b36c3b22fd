"""The warehouse: every read and write of trades, snapshots, rankings, quarantine and outbox."""

import dataclasses
import datetime as dt
import hashlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import postgresql, sqlite

from desk_pipeline.adapters import tables as t
from desk_pipeline.domain.collateral import in_ranking_order
from desk_pipeline.domain.errors import DeskPipelineError
from desk_pipeline.domain.restatement import stale_snapshots
from desk_pipeline.domain.schema import (
    BOOK_DTYPES,
    CANCEL,
    FX_DTYPES,
    INSTRUMENT_DTYPES,
    POSITION_DTYPES,
    PRICE_DTYPES,
    QUARANTINE_DTYPES,
    RANKING_DTYPES,
    TRADE_COLUMNS,
    TRADE_DTYPES,
    VALUATION_DTYPES,
    conform,
    empty_frame,
)
from desk_pipeline.domain.snapshots import PositionSnapshotCreated, snapshot_id_for
from desk_pipeline.domain.trades import (
    latest_versions,
    rejection_fingerprints,
    split_conflicting_duplicates,
)

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
# The content digest of an EOD without rows (a book holding nothing): no row hashes summed.
EMPTY_DIGEST = f"{0:016x}"
# Bound parameters per IN list: well under SQLite's 32,766 and PostgreSQL's 65,535 limits.
CHUNK = 5000
# A write that adds this share of a table's rows refreshes its PostgreSQL statistics.
ANALYZE_GROWTH = 0.1


class WarehouseError(DeskPipelineError):
    """A warehouse read or write failed; the message names the operation."""


class NoWarehouseError(WarehouseError):
    """No desk warehouse at the URL: no SQLite file, or a database without the desk's schema."""


class WarehouseUnreachableError(WarehouseError):
    """The warehouse's database does not answer (server down, wrong host or port, bad file)."""


def to_micros(ts: pd.Timestamp) -> int:
    """A tz-aware timestamp as integer microseconds since the epoch (UTC)."""
    return int(pd.Timestamp(ts).tz_convert("UTC").value // 1000)


def micros_of(times: pd.Series) -> np.ndarray:
    """:func:`to_micros` of a whole column, vectorised (whatever its time resolution)."""
    since = times.dt.tz_convert("UTC") - pd.Timestamp(0, tz="UTC")
    return (since // pd.Timedelta(microseconds=1)).to_numpy(dtype="int64")


def from_micros(values: Any) -> Any:
    """Integer microseconds (scalar or array) back to UTC timestamps."""
    return pd.to_datetime(values, unit="us", utc=True)


def now_micros() -> int:
    """The wall clock in microseconds; the warehouse stamps ingestion and computation with it."""
    return int(dt.datetime.now(dt.UTC).timestamp() * 1_000_000)


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


@dataclasses.dataclass(frozen=True)
class EodWrite:
    """One end-of-day snapshot that won the keep-last comparison and was stored."""

    book_id: str
    business_date: str
    snapshot_id: str
    as_of: pd.Timestamp
    position_count: int
    restatement: bool


class PositionRepository:
    """Trades, snapshots, rankings, quarantine and outbox in one SQLite or PostgreSQL database."""

    def __init__(self, url: str) -> None:
        """Connect to ``url`` (a SQLAlchemy URL) and bring its schema to the latest migration."""
        self.url = url
        self.engine = _engine(url)
        self.applied = self.migrate()

    def migrate(self) -> list[str]:
        """Apply every pending Alembic migration, one process at a time; return those applied.

        A schema already at the latest revision is only read (no DDL, no lock held). Otherwise
        the migration runs in one transaction under the warehouse's migration lock (a
        PostgreSQL advisory lock per schema; SQLite's write lock, taken by ``BEGIN IMMEDIATE``),
        and re-reads the revision once it holds the lock, so processes racing on a new
        warehouse apply each migration exactly once and all succeed.

        Raises:
            WarehouseError: the schema is at a revision this code does not know (newer code
                migrated it), or the migration failed.
        """
        head = schema_head()
        if self.schema_revision() == head:
            return []
        config = _alembic_config()
        try:
            with self.engine.begin() as conn:
                _serialised(conn, "migrate")
                current = MigrationContext.configure(conn).get_current_revision()
                pending = _pending_revisions(current)
                if pending:
                    config.attributes["connection"] = conn
                    command.upgrade(config, "head")
        except sa.exc.SQLAlchemyError as err:
            raise WarehouseError(f"migrate: {err}") from err
        if pending:
            log.info("migrated the warehouse schema from %s to %s", current or "none", head)
        return pending

    def schema_revision(self) -> str | None:
        """The warehouse schema's Alembic revision; None for a new, empty warehouse."""
        with self._transaction("schema_revision") as conn:
            return MigrationContext.configure(conn).get_current_revision()

    @contextmanager
    def _transaction(self, operation: str) -> Iterator[sa.Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as err:
            raise WarehouseError(f"{operation}: {err}") from err

    # ---- ingestion -------------------------------------------------------------------------

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
        changes a trade already covered by a stored snapshot writes a stale mark for its book.
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
        earliest["covered_us"] = self._covered_until(conn, list(earliest.index))
        late = earliest[earliest["from_time_us"] < earliest["covered_us"]]
        # Joined only for late books: joining every book's ids cost seconds per 100k trades.
        late_trades = touched[touched["book_id"].isin(late.index)]
        late = late.assign(trade_ids=late_trades.groupby("book_id")["trade_id"].agg(_joined_ids))
        marks = [
            {
                "book_id": book,
                "from_time_us": int(from_us),
                "marked_at_us": stamp,
                "trade_ids": ids,
            }
            for book, from_us, ids in zip(
                late.index, late["from_time_us"], late["trade_ids"], strict=True
            )
        ]
        _insert(conn, t.stale_marks, marks)
        for mark in marks:
            log.warning(
                "late or corrected trades for book %s from %s make stored snapshots stale",
                mark["book_id"],
                from_micros(mark["from_time_us"]),
            )
        return [m["book_id"] for m in marks]

    def _covered_until(self, conn: sa.Connection, books: list[str]) -> np.ndarray:
        """Per book, the latest instant a stored snapshot (EOD or intraday) covers; -1 if none.

        Any book's: a stored day holds every book, so a book whose first trade arrives late
        (it has no EOD of its own yet) still makes the stored days it belongs to stale.
        """
        eod = conn.execute(sa.select(sa.func.max(t.eod_snapshots.c.as_of_us))).scalar()
        intraday = conn.execute(sa.select(sa.func.max(t.intraday_windows.c.window_end_us))).scalar()
        covered = max(-1 if eod is None else int(eod), -1 if intraday is None else int(intraday))
        return np.full(len(books), covered, dtype="int64")

    # ---- reading trades and checkpoints -----------------------------------------------------

    def opening(self, before: pd.Timestamp) -> "Opening":
        """The latest valid stored state at or before ``before``, to roll forward from.

        Prefers the latest non-stale intraday window when it is at least as recent as every
        book's end-of-day; otherwise each book's latest non-stale EOD, and for books without one
        the start of their history. Valid = no late trade arrived after it was computed.
        """
        read_at = now_micros()
        before_us = to_micros(before)
        with self._transaction("opening") as conn:
            marks = _read(conn, sa.select(t.stale_marks))
            books = _read(conn, sa.select(t.trading_books)).set_index("book_id")["first_trade_us"]
            headers = _read(
                conn, sa.select(t.eod_snapshots).where(t.eod_snapshots.c.as_of_us <= before_us)
            )
            headers = headers[~stale_snapshots(headers, marks)]
            latest = headers.sort_values("as_of_us", kind="stable").drop_duplicates(
                "book_id", keep="last"
            )
            windows = _read(
                conn,
                sa.select(t.intraday_windows)
                .where(t.intraday_windows.c.window_end_us <= before_us)
                .order_by(t.intraday_windows.c.window_end_us.desc())
                .limit(6),
            ).assign(book_id=None)
            windows = windows.rename(columns={"window_end_us": "as_of_us"})
            windows = windows[~stale_snapshots(windows, marks, any_book=True)]
            eod_until = latest["as_of_us"].max() if len(latest) else -1
            if len(windows) and windows["as_of_us"].iloc[0] >= eod_until:
                end_us = int(windows["as_of_us"].iloc[0])
                positions = _read(
                    conn,
                    sa.select(t.intraday_positions).where(
                        t.intraday_positions.c.window_end_us == end_us
                    ),
                    raw=True,
                )
                bounds = pd.Series(end_us, index=books.index, dtype="int64")
                return Opening(conform(positions, POSITION_DTYPES), bounds, read_at)
            positions = self._eod_rows(conn, list(latest["snapshot_id"]))
        bounds = books.astype("int64").copy()
        bounds.update(latest.set_index("book_id")["as_of_us"].astype("int64"))
        return Opening(conform(positions, POSITION_DTYPES), bounds.astype("int64"), read_at)

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

    # ---- intraday ---------------------------------------------------------------------------

    def replace_intraday(
        self, window_end: pd.Timestamp, positions: pd.DataFrame, read_at_us: int
    ) -> int:
        """Store the snapshot as of ``window_end``, replacing any earlier one of that window."""
        end_us = to_micros(window_end)
        rows = conform(positions, POSITION_DTYPES).assign(window_end_us=end_us)
        with self._transaction(f"replace_intraday {window_end}") as conn:
            conn.execute(
                t.intraday_positions.delete().where(t.intraday_positions.c.window_end_us == end_us)
            )
            conn.execute(
                t.intraday_windows.delete().where(t.intraday_windows.c.window_end_us == end_us)
            )
            _insert(conn, t.intraday_positions, rows)
            conn.execute(
                t.intraday_windows.insert(), {"window_end_us": end_us, "computed_at_us": read_at_us}
            )
        return len(rows)

    def purge_intraday(self, before: pd.Timestamp) -> int:
        """Delete intraday snapshots older than ``before``; EODs are kept."""
        cutoff = to_micros(before)
        with self._transaction("purge_intraday") as conn:
            conn.execute(
                t.intraday_positions.delete().where(t.intraday_positions.c.window_end_us < cutoff)
            )
            result = conn.execute(
                t.intraday_windows.delete().where(t.intraday_windows.c.window_end_us < cutoff)
            )
        return result.rowcount

    # ---- end of day -------------------------------------------------------------------------

    def keep_last_eod(self, snapshots: pd.DataFrame, read_at_us: int) -> list[EodWrite]:
        """Store end-of-day snapshots under the keep-last rule, with their events, atomically.

        Args:
            snapshots: ``business_date``, ``as_of`` and POSITION_COLUMNS; one snapshot per
                (book_id, business_date), all rows of a book-day sharing one ``as_of``.
            read_at_us: when the inputs were read; the computation's ``computed_at``.

        Returns:
            The snapshots that replaced (or created) the stored EOD. A snapshot older than the
            stored one writes nothing and emits no event.
        """
        if snapshots.empty:
            return []
        headers = (
            snapshots.assign(open=snapshots["quantity"] != 0)
            .groupby(["book_id", "business_date"], sort=True)
            .agg(as_of=("as_of", "first"), position_count=("open", "sum"))
            .reset_index()
        )
        headers["content_digest"] = _digests(snapshots, headers)
        headers["as_of_us"] = headers["as_of"].map(to_micros).astype("int64")
        headers["computed_at_us"] = read_at_us
        headers["snapshot_id"] = [
            snapshot_id_for(b, d, a, pd.Timestamp(read_at_us * 1000, tz="UTC"))
            for b, d, a in zip(
                headers["book_id"], headers["business_date"], headers["as_of"], strict=True
            )
        ]
        header_rows = _records(
            headers[
                [
                    "book_id",
                    "business_date",
                    "snapshot_id",
                    "as_of_us",
                    "computed_at_us",
                    "position_count",
                    "content_digest",
                ]
            ]
        )
        e = t.eod_snapshots
        with self._transaction("keep_last_eod") as conn:
            previous = _read(
                conn,
                sa.select(e.c.book_id, e.c.business_date, e.c.as_of_us).where(
                    e.c.business_date.between(
                        headers["business_date"].min(), headers["business_date"].max()
                    )
                ),
            ).rename(columns={"as_of_us": "previous_as_of_us"})
            insert = _insert_for(conn, e)
            stmt = insert.on_conflict_do_update(
                index_elements=["book_id", "business_date"],
                set_={
                    c: insert.excluded[c]
                    for c in (
                        "snapshot_id",
                        "as_of_us",
                        "computed_at_us",
                        "position_count",
                        "content_digest",
                    )
                },
                # Keep the last; a same-as_of recomputation with identical rows is a no-op,
                # so re-running a backfill neither rewrites nor re-announces unchanged days.
                where=(insert.excluded.as_of_us > e.c.as_of_us)
                | (
                    (insert.excluded.as_of_us == e.c.as_of_us)
                    & (insert.excluded.computed_at_us > e.c.computed_at_us)
                    & (insert.excluded.content_digest != e.c.content_digest)
                ),
            ).returning(e.c.snapshot_id)
            won_ids = {
                row[0]
                for chunk in _chunks(header_rows, 1000)
                for row in conn.execute(stmt, chunk).all()
            }
            self._confirm_unchanged(conn, header_rows, read_at_us)
            won = headers[headers["snapshot_id"].isin(won_ids)].merge(
                previous, on=["book_id", "business_date"], how="left"
            )
            conn.execute(
                t.eod_positions.delete().where(
                    t.eod_positions.c.book_id == sa.bindparam("b"),
                    t.eod_positions.c.business_date == sa.bindparam("d"),
                    t.eod_positions.c.snapshot_id != sa.bindparam("s"),
                ),
                [
                    {"b": b, "d": d, "s": s}
                    for b, d, s in zip(
                        won["book_id"], won["business_date"], won["snapshot_id"], strict=True
                    )
                ]
                or [{"b": "", "d": "", "s": ""}],
            )
            rows = snapshots.merge(
                won[["book_id", "business_date", "snapshot_id"]], on=["book_id", "business_date"]
            )
            _insert(
                conn,
                t.eod_positions,
                rows[
                    [
                        "snapshot_id",
                        "instrument_id",
                        "book_id",
                        "business_date",
                        "quantity",
                        "avg_price",
                        "realized_pnl",
                    ]
                ],
            )
            _analyze_if_grown(conn, [t.eod_positions], len(rows))
            writes = [
                EodWrite(
                    book_id=b,
                    business_date=d,
                    snapshot_id=s,
                    as_of=a,
                    position_count=int(n),
                    restatement=bool(same),
                )
                for b, d, s, a, n, same in zip(
                    won["book_id"],
                    won["business_date"],
                    won["snapshot_id"],
                    won["as_of"],
                    won["position_count"],
                    won["previous_as_of_us"] == won["as_of_us"],
                    strict=True,
                )
            ]
            _insert(conn, t.outbox, [_outbox_row(w, read_at_us) for w in writes])
        return writes

    def eod(self, book_id: str, business_date: str) -> tuple[dict[str, Any], pd.DataFrame] | None:
        """The stored end-of-day of one book and day: header and every position row, or None.

        One statement joins header and rows, so a reader never sees a mix of two snapshots.
        """
        e, p = t.eod_snapshots, t.eod_positions
        found = self._one_eod(
            "eod", book_id, business_date, [], e.outerjoin(p, p.c.snapshot_id == e.c.snapshot_id)
        )
        if found is None:
            return None
        header, held = found
        return header, conform(held, POSITION_DTYPES)

    def _one_eod(
        self,
        label: str,
        book_id: str,
        business_date: str,
        columns: list[sa.ColumnElement[Any]],
        source: sa.FromClause,
    ) -> tuple[dict[str, Any], pd.DataFrame] | None:
        """Header and position rows (plus ``columns`` from ``source``) of one stored EOD."""
        e, p = t.eod_snapshots, t.eod_positions
        query = (
            sa.select(
                e.c.snapshot_id,
                e.c.as_of_us,
                p.c.instrument_id,
                p.c.quantity,
                p.c.avg_price,
                p.c.realized_pnl,
                *columns,
            )
            .select_from(source)
            .where(e.c.book_id == book_id, e.c.business_date == business_date)
            .order_by(p.c.instrument_id)
        )
        with self._transaction(label) as conn:
            rows = _read(conn, query)
        if rows.empty:
            return None
        header = {
            "book_id": book_id,
            "business_date": business_date,
            "snapshot_id": rows["snapshot_id"].iloc[0],
            "as_of": from_micros(int(rows["as_of_us"].iloc[0])),
        }
        return header, rows.dropna(subset=["instrument_id"]).assign(book_id=book_id)

    def latest_eods(self) -> pd.DataFrame:
        """Every book's latest stored EOD: book_id, business_date, snapshot_id, as_of, positions.

        One statement, so a reader never mixes two snapshots of a book: DISTINCT ON (book_id)
        on PostgreSQL, ROW_NUMBER() over each book's days on SQLite. Rows are sorted by
        (book_id, instrument_id); flat positions are included (they carry realised P&L).
        """
        e, p = t.eod_snapshots, t.eod_positions
        if self.engine.dialect.name == "postgresql":
            latest = (
                sa.select(e.c.snapshot_id)
                .distinct(e.c.book_id)
                .order_by(e.c.book_id, e.c.business_date.desc())
            )
        else:
            ranked = sa.select(
                e.c.snapshot_id,
                sa.func.row_number()
                .over(partition_by=e.c.book_id, order_by=e.c.business_date.desc())
                .label("n"),
            ).subquery()
            latest = sa.select(ranked.c.snapshot_id).where(ranked.c.n == 1)
        return self._eod_position_rows(
            "latest_eods", p.c.snapshot_id.in_(latest), order_by=(p.c.book_id, p.c.instrument_id)
        )

    def eod_positions(self, business_dates: Sequence[str]) -> pd.DataFrame:
        """Stored EOD rows of the given days: business_date, snapshot_id, as_of and positions."""
        p = t.eod_positions
        return self._eod_position_rows("eod_positions", p.c.business_date.in_(list(business_dates)))

    def _eod_position_rows(
        self,
        operation: str,
        where: sa.ColumnElement[bool],
        order_by: Sequence[sa.ColumnElement[Any]] = (),
    ) -> pd.DataFrame:
        """EOD position rows matching ``where``, each with its header's ``as_of``."""
        e, p = t.eod_snapshots, t.eod_positions
        query = (
            sa.select(
                p.c.book_id,
                p.c.business_date,
                p.c.snapshot_id,
                e.c.as_of_us,
                p.c.instrument_id,
                p.c.quantity,
                p.c.avg_price,
                p.c.realized_pnl,
            )
            .select_from(p.join(e, e.c.snapshot_id == p.c.snapshot_id))
            .where(where)
            .order_by(*order_by)
        )
        with self._transaction(operation) as conn:
            rows = _read(conn, query, raw=True)
        return rows.assign(as_of=from_micros(rows["as_of_us"].to_numpy())).drop(columns="as_of_us")

    def eod_headers(self) -> pd.DataFrame:
        """Every stored EOD header, with ``stale`` and the trades that made it stale."""
        with self._transaction("eod_headers") as conn:
            headers = _read(conn, sa.select(t.eod_snapshots))
            marks = _read(conn, sa.select(t.stale_marks))
        return headers.assign(stale=stale_snapshots(headers, marks))

    def stale_marks(self) -> pd.DataFrame:
        """Every stale mark: book, earliest affected time, when and why (trade ids)."""
        with self._transaction("stale_marks") as conn:
            return _read(conn, sa.select(t.stale_marks))

    # ---- collateral -------------------------------------------------------------------------

    def replace_rankings(self, business_dates: Sequence[str], ranking: pd.DataFrame) -> int:
        """Replace every stored ranking of ``business_dates`` with ``ranking``, atomically.

        All rows of those days go first, so a book whose EOD no longer holds anything keeps no
        ranking of a superseded snapshot.

        Args:
            business_dates: the YYYY-MM-DD days ``ranking`` covers.
            ranking: ``business_date``, ``snapshot_id``, ``as_of`` and RANKING_DTYPES rows.

        Returns:
            Rows written.
        """
        r = t.collateral_rankings
        rows = _nulls_as_none(
            ranking.assign(as_of_us=micros_of(ranking["as_of"])).drop(columns="as_of")
        )
        with self._transaction("replace_rankings") as conn:
            for days in _chunks(list(business_dates)):
                conn.execute(r.delete().where(r.c.business_date.in_(days)))
            _insert(conn, r, rows)
        return len(rows)

    def ranking(self, book_id: str, business_date: str) -> pd.DataFrame:
        """The stored ranking of one book and day (empty when none)."""
        r = t.collateral_rankings
        query = sa.select(r).where(r.c.book_id == book_id, r.c.business_date == business_date)
        with self._transaction("ranking") as conn:
            rows = _read(conn, query)
        rows = rows.assign(as_of=from_micros(rows["as_of_us"].to_numpy())).drop(columns="as_of_us")
        rows = rows.astype({"rank": RANKING_DTYPES["rank"]})
        return in_ranking_order(rows)

    def rankings(self, business_dates: Sequence[str]) -> pd.DataFrame:
        """The stored rankings of every book on the given days, ordered by book, day and rank."""
        r = t.collateral_rankings
        query = sa.select(r).where(r.c.business_date.in_(list(business_dates)))
        with self._transaction("rankings") as conn:
            # Raw: SQLite hands eligible over as 0/1, made boolean below.
            rows = _read(conn, query, raw=True)
        rows = rows.assign(as_of=from_micros(rows["as_of_us"].to_numpy())).drop(columns="as_of_us")
        rows = rows.astype({"rank": RANKING_DTYPES["rank"]})
        rows["eligible"] = rows["eligible"].astype(bool)
        return in_ranking_order(rows)

    # ---- valuation ----------------------------------------------------------------------------

    def replace_valuations(self, business_dates: Sequence[str], valuation: pd.DataFrame) -> int:
        """Replace every stored valuation of ``business_dates`` with ``valuation``, atomically.

        All rows of those days go first, so a book whose EOD no longer holds anything keeps no
        valuation of a superseded snapshot.

        Args:
            business_dates: the YYYY-MM-DD days ``valuation`` covers (a run's partitions).
            valuation: VALUATION_DTYPES rows of those days.

        Returns:
            Rows written.
        """
        v = t.eod_valuations
        rows = valuation.drop(columns=["quantity", "avg_price"]).assign(
            price_date=valuation["price_date"].dt.strftime("%Y-%m-%d")
        )
        rows = _nulls_as_none(rows)
        with self._transaction("replace_valuations") as conn:
            for days in _chunks(list(business_dates)):
                conn.execute(v.delete().where(v.c.business_date.in_(days)))
            _insert(conn, v, rows)
        return len(rows)

    def valued_eod(
        self, book_id: str, business_date: str
    ) -> tuple[dict[str, Any], pd.DataFrame] | None:
        """The stored EOD of one book and day with each row's stored valuation, or None.

        One statement joins header, rows and valuation on the snapshot id, so a reader never
        sees one snapshot's positions with another's valuation.

        Returns:
            The header (as :meth:`eod`) and one row per position: POSITION_DTYPES, the
            valuation columns of VALUATION_DTYPES (``price_date`` a date) and ``valued``, False
            when no valuation of this snapshot is stored (its valuation columns are then null).
        """
        e, p, v = t.eod_snapshots, t.eod_positions, t.eod_valuations
        valuation = [c for c in v.columns if c.name not in ("snapshot_id", "instrument_id")]
        valuation = [c for c in valuation if c.name not in ("book_id", "business_date")]
        found = self._one_eod(
            "valued_eod",
            book_id,
            business_date,
            [v.c.snapshot_id.label("valued_snapshot_id"), *valuation],
            e.outerjoin(p, p.c.snapshot_id == e.c.snapshot_id).outerjoin(
                v, (v.c.snapshot_id == p.c.snapshot_id) & (v.c.instrument_id == p.c.instrument_id)
            ),
        )
        if found is None:
            return None
        header, held = found
        positions = conform(held, POSITION_DTYPES)
        valued = held["valued_snapshot_id"].notna().to_numpy()
        values = held.loc[:, [c.name for c in valuation]].reset_index(drop=True)
        values = values.assign(
            price_date=pd.to_datetime(values["price_date"]),
            stale_price=values["stale_price"].astype(object).where(valued, False),
        )
        values = values.astype({c: VALUATION_DTYPES[c] for c in values.columns})
        # NULL text reads back as NaN under pandas 3; the domain's frames use None.
        text = ["currency", "base_currency", "reason"]
        values[text] = values[text].astype(object).where(values[text].notna(), None)
        return header, pd.concat([positions, values.assign(valued=valued)], axis=1)

    # ---- quarantine and outbox ----------------------------------------------------------------

    def quarantined(self) -> pd.DataFrame:
        """One row per distinct rejected input, oldest first.

        Returns:
            The quarantine table's columns (``source`` and ``row_number`` of its first arrival)
            and ``sources``: a list of every source it arrived in, in order of arrival.
        """
        q, a = t.quarantine, t.quarantine_arrivals
        with self._transaction("quarantined") as conn:
            rows = _read(conn, sa.select(q).order_by(q.c.id))
            arrivals = _read(
                conn,
                sa.select(a.c.quarantine_id, a.c.source).order_by(a.c.arrived_at_us, a.c.source),
            )
        sources = arrivals.groupby("quarantine_id", sort=False)["source"].agg(list)
        return rows.assign(sources=rows["id"].map(sources))

    def ingested_batches(self) -> pd.DataFrame:
        """Every ingested batch with its received / accepted / quarantined counts."""
        with self._transaction("ingested_batches") as conn:
            return _read(conn, sa.select(t.ingested_batches))

    def pending_events(self, limit: int = 1000) -> pd.DataFrame:
        """Unpublished outbox rows in write order (which is business-date order per book)."""
        o = t.outbox
        query = sa.select(o).where(o.c.published_at_us.is_(None)).order_by(o.c.id).limit(limit)
        with self._transaction("pending_events") as conn:
            return _read(conn, query)

    def publishable_events(self, limit: int = 1000) -> pd.DataFrame:
        """The pending rows the relay may publish now, in write order.

        A parked row and every later row of its book are left out: a book's events are
        published in order or not at all.
        """
        o = t.outbox
        parked_books = sa.select(o.c.book_id).where(
            o.c.published_at_us.is_(None), o.c.parked_reason.is_not(None)
        )
        query = (
            sa.select(o)
            .where(o.c.published_at_us.is_(None), o.c.book_id.not_in(parked_books))
            .order_by(o.c.id)
            .limit(limit)
        )
        with self._transaction("publishable_events") as conn:
            return _read(conn, query)

    def park_event(self, outbox_id: int, reason: str) -> None:
        """Set one outbox row aside with the reason no publication attempt can succeed."""
        with self._transaction("park_event") as conn:
            conn.execute(
                t.outbox.update()
                .where(t.outbox.c.id == int(outbox_id))
                .values(parked_reason=reason, parked_at_us=now_micros())
            )

    def parked_events(self) -> pd.DataFrame:
        """Unpublished rows the relay parked, with parked_reason, in write order."""
        o = t.outbox
        query = (
            sa.select(o)
            .where(o.c.published_at_us.is_(None), o.c.parked_reason.is_not(None))
            .order_by(o.c.id)
        )
        with self._transaction("parked_events") as conn:
            return _read(conn, query)

    def unpark_events(self) -> int:
        """Put every parked row back in the queue (after a fix); returns how many."""
        o = t.outbox
        with self._transaction("unpark_events") as conn:
            result = conn.execute(
                o.update()
                .where(o.c.published_at_us.is_(None), o.c.parked_reason.is_not(None))
                .values(parked_reason=None, parked_at_us=None)
            )
        return int(result.rowcount)

    def mark_published(self, outbox_ids: Iterable[int]) -> None:
        """Record that the broker confirmed these outbox rows."""
        ids = [int(i) for i in outbox_ids]
        stamp = now_micros()
        with self._transaction("mark_published") as conn:
            for chunk in _chunks(ids):
                conn.execute(
                    t.outbox.update().where(t.outbox.c.id.in_(chunk)).values(published_at_us=stamp)
                )

    def record_attempt(self, outbox_ids: Iterable[int]) -> None:
        """Count one failed publication attempt on these outbox rows."""
        ids = [int(i) for i in outbox_ids]
        with self._transaction("record_attempt") as conn:
            for chunk in _chunks(ids):
                conn.execute(
                    t.outbox.update()
                    .where(t.outbox.c.id.in_(chunk))
                    .values(attempts=t.outbox.c.attempts + 1)
                )

    def outbox_backlog(self) -> int:
        """How many events wait for the broker."""
        o = t.outbox
        with self._transaction("outbox_backlog") as conn:
            count = conn.execute(
                sa.select(sa.func.count()).where(o.c.published_at_us.is_(None))
            ).scalar()
        return int(count or 0)

    def outbox_events(self) -> pd.DataFrame:
        """Every outbox row, published or not, in write order (audits and tests)."""
        with self._transaction("outbox_events") as conn:
            return _read(conn, sa.select(t.outbox).order_by(t.outbox.c.id))

    def inbox_contains(self, consumer: str, event_id: str) -> bool:
        """Whether ``consumer`` has already applied the event ``event_id``."""
        i = t.inbox
        with self._transaction("inbox_contains") as conn:
            found = conn.execute(
                sa.select(i.c.event_id).where(i.c.consumer == consumer, i.c.event_id == event_id)
            ).first()
        return found is not None

    def record_inbox(self, consumer: str, event_id: str) -> bool:
        """Record that ``consumer`` applied ``event_id``; False when it was already recorded."""
        with self._transaction("record_inbox") as conn:
            insert = _insert_for(conn, t.inbox).on_conflict_do_nothing()
            result = conn.execute(
                insert,
                {"consumer": consumer, "event_id": event_id, "processed_at_us": now_micros()},
            )
        return result.rowcount == 1

    def inbox_count(self, consumer: str) -> int:
        """How many distinct events ``consumer`` has applied."""
        i = t.inbox
        with self._transaction("inbox_count") as conn:
            count = conn.execute(
                sa.select(sa.func.count()).where(i.c.consumer == consumer)
            ).scalar()
        return int(count or 0)

    def _eod_rows(self, conn: sa.Connection, snapshot_ids: list[str]) -> pd.DataFrame:
        frames = [
            _read(
                conn,
                sa.select(t.eod_positions).where(t.eod_positions.c.snapshot_id.in_(chunk)),
                raw=True,
            )
            for chunk in _chunks(snapshot_ids)
        ]
        return pd.concat(frames) if frames else _read_empty(t.eod_positions)

    def _confirm_unchanged(
        self, conn: sa.Connection, header_rows: list[dict[str, Any]], read_at_us: int
    ) -> None:
        """Stamp stored EODs that a later recomputation found identical as computed at its read.

        Without it an EOD made stale by a change that moves no position (an amendment with the
        same economics) would stay stale forever, since an identical recomputation writes nothing.
        The later stamp also keeps an older, different computation from replacing it.
        """
        e = t.eod_snapshots
        stmt = (
            e.update()
            .where(
                e.c.book_id == sa.bindparam("b"),
                e.c.business_date == sa.bindparam("d"),
                e.c.as_of_us == sa.bindparam("a"),
                e.c.content_digest == sa.bindparam("g"),
                e.c.computed_at_us < read_at_us,
            )
            .values(computed_at_us=read_at_us)
        )
        params = [
            {
                "b": r["book_id"],
                "d": r["business_date"],
                "a": r["as_of_us"],
                "g": r["content_digest"],
            }
            for r in header_rows
        ]
        for chunk in _chunks(params, 1000):
            conn.execute(stmt, chunk)

    def empty_missing_eods(
        self, snapshots: pd.DataFrame, days: pd.DataFrame, read_at_us: int
    ) -> list[EodWrite]:
        """Empty the stored EODs of books that a recomputation of ``days`` found holding nothing.

        A book whose every trade was cancelled or moved to another book has no rows in
        ``snapshots``, so :meth:`keep_last_eod` cannot replace its stored EOD; this does, under
        the same keep-last rule, with its event, one transaction per book-day.

        Args:
            snapshots: what :meth:`keep_last_eod` was given for ``days``.
            days: ``business_date`` and ``as_of`` of every day that was recomputed.
            read_at_us: when the recomputation's inputs were read.
        """
        if days.empty:
            return []
        e = t.eod_snapshots
        with self._transaction("empty_missing_eods") as conn:
            stored = _read(
                conn,
                sa.select(e).where(e.c.business_date.in_(list(days["business_date"].unique()))),
            )
        present = snapshots[["book_id", "business_date"]].drop_duplicates()
        missing = stored.merge(present, how="left", indicator=True)
        missing = missing[missing["_merge"] == "left_only"].merge(days, on="business_date")
        missing["new_as_of_us"] = missing["as_of"].map(to_micros).astype("int64")
        later = missing["new_as_of_us"] > missing["as_of_us"]
        restated = (
            (missing["new_as_of_us"] == missing["as_of_us"])
            & (missing["computed_at_us"] < read_at_us)
            & (missing["content_digest"] != EMPTY_DIGEST)
        )
        writes = []
        for r in missing[later | restated].to_dict(orient="records"):
            as_of = from_micros(int(r["new_as_of_us"]))
            write = EodWrite(
                book_id=r["book_id"],
                business_date=r["business_date"],
                snapshot_id=snapshot_id_for(
                    r["book_id"], r["business_date"], as_of, from_micros(read_at_us)
                ),
                as_of=as_of,
                position_count=0,
                restatement=bool(r["new_as_of_us"] == r["as_of_us"]),
            )
            with self._transaction("empty_missing_eods") as conn:
                # Compare-and-set on the header read above: a concurrent newer write wins.
                swapped = conn.execute(
                    e.update()
                    .where(
                        e.c.snapshot_id == r["snapshot_id"],
                        e.c.computed_at_us == int(r["computed_at_us"]),
                    )
                    .values(
                        snapshot_id=write.snapshot_id,
                        as_of_us=int(r["new_as_of_us"]),
                        computed_at_us=read_at_us,
                        position_count=0,
                        content_digest=EMPTY_DIGEST,
                    )
                ).rowcount
                if swapped:
                    conn.execute(
                        t.eod_positions.delete().where(
                            t.eod_positions.c.snapshot_id == r["snapshot_id"]
                        )
                    )
                    _insert(conn, t.outbox, [_outbox_row(write, read_at_us)])
                    writes.append(write)
        return writes

    def eod_owners(self, business_dates: Sequence[str] | None = None) -> pd.DataFrame:
        """Every distinct (book_id, business_date, snapshot_id) of stored EOD headers and rows.

        Only of ``business_dates`` when given (an index serves them), else of every day.
        """
        e, p = t.eod_snapshots, t.eod_positions
        headers = sa.select(e.c.book_id, e.c.business_date, e.c.snapshot_id)
        rows = sa.select(p.c.book_id, p.c.business_date, p.c.snapshot_id).distinct()
        if business_dates is not None:
            headers = headers.where(e.c.business_date.in_(list(business_dates)))
            rows = rows.where(p.c.business_date.in_(list(business_dates)))
        query = sa.union(headers, rows)
        with self._transaction("eod_owners") as conn:
            result = conn.execute(query)
            return pd.DataFrame(result.all(), columns=["book_id", "business_date", "snapshot_id"])

    # ---- reference data and marks -----------------------------------------------------------

    def replace_reference(
        self,
        *,
        instruments: pd.DataFrame | None = None,
        books: pd.DataFrame | None = None,
        prices: pd.DataFrame | None = None,
        fx_rates: pd.DataFrame | None = None,
        quarantined: pd.DataFrame | None = None,
    ) -> dict[str, int]:
        """Store validated reference rows and their quarantine in one transaction; idempotent.

        Each row replaces the stored row with the same key (instrument_id; book_id; instrument_id
        and price_date; currency and rate_date). Stored rows the input does not mention are kept,
        so a quarantined or missing row never erases good data. A rejected row already in the
        quarantine only gains an arrival (see :meth:`quarantined`).

        Args:
            instruments: INSTRUMENT_DTYPES, or None to leave instruments alone.
            books: BOOK_DTYPES, or None.
            prices: PRICE_DTYPES, or None.
            fx_rates: FX_DTYPES, or None.
            quarantined: QUARANTINE_DTYPES rows rejected by validation, or None.

        Returns:
            Rows written per table name, and ``quarantined``: rejected inputs not seen before.
        """
        inputs = (
            (t.instruments, instruments, ["instrument_id"]),
            (t.books, books, ["book_id"]),
            (t.prices, prices, ["instrument_id", "price_date"]),
            (t.fx_rates, fx_rates, ["currency", "rate_date"]),
        )
        written: dict[str, int] = {}
        stamp = now_micros()
        with self._transaction("replace_reference") as conn:
            _serialised(conn, "reference")
            for table, frame, keys in inputs:
                if frame is None:
                    written[table.name] = 0
                    continue
                rows = _reference_rows(frame, keys)
                _bulk_upsert(conn, table, rows, keys=keys)
                written[table.name] = len(rows)
            written["quarantined"] = _store_quarantine(conn, quarantined, stamp)
        log.info("replace_reference: %s", written)
        return written

    def reference_as_of(self, start_date: pd.Timestamp, end_date: pd.Timestamp) -> "ReferenceData":
        """Stored instruments and books, with the marks and FX rates dated in [start, end]."""
        first, last = (pd.Timestamp(d).strftime("%Y-%m-%d") for d in (start_date, end_date))
        p, f = t.prices, t.fx_rates
        # Raw reads: every column is text or a number, typed by _dated and conform below.
        with self._transaction("reference_as_of") as conn:
            instruments = _read(
                conn, sa.select(t.instruments).order_by(t.instruments.c.instrument_id), raw=True
            )
            books = _read(conn, sa.select(t.books).order_by(t.books.c.book_id), raw=True)
            prices = _read(
                conn,
                sa.select(p)
                .where(p.c.price_date.between(first, last))
                .order_by(p.c.instrument_id, p.c.price_date),
                raw=True,
            )
            fx_rates = _read(
                conn,
                sa.select(f)
                .where(f.c.rate_date.between(first, last))
                .order_by(f.c.currency, f.c.rate_date),
                raw=True,
            )
        return ReferenceData(
            instruments=_dated(instruments, "maturity_date", INSTRUMENT_DTYPES),
            books=conform(books, BOOK_DTYPES) if len(books) else empty_frame(BOOK_DTYPES),
            prices=_dated(prices, "price_date", PRICE_DTYPES),
            fx_rates=_dated(fx_rates, "rate_date", FX_DTYPES),
        )


@dataclasses.dataclass(frozen=True)
class Opening:
    """A valid stored state to roll forward from.

    Attributes:
        positions: POSITION_COLUMNS.
        bounds: per book_id, the time (µs) from which trades must still be applied.
        read_at_us: when it was read; a later stale mark invalidates what is computed from it.
    """

    positions: pd.DataFrame
    bounds: pd.Series
    read_at_us: int


# ---- module helpers: SQL plumbing shared by the repository's methods -----------------------


def _engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 120})

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            # Take the write lock when a transaction starts, so two writers queue instead of
            # failing on lock upgrade; WAL lets readers continue while one writes.
            dbapi_connection.isolation_level = None
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def schema_head() -> str:
    """The latest migration revision this code knows."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:
        raise WarehouseError(f"no migrations found under {MIGRATIONS}")
    return head


def require_warehouse(url: str) -> str:
    """The schema revision of the desk warehouse at ``url``, which must exist; creates nothing.

    A read must not leave an empty warehouse behind: a SQLite file that does not exist is not
    opened (connecting would create it), and nothing is migrated.

    Raises:
        NoWarehouseError: no SQLite file at the path, or a database without the desk's schema.
        WarehouseUnreachableError: the database does not answer; the message has the
            driver's first line and the URL without its password.
    """
    shown = sa.make_url(url).render_as_string(hide_password=True)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise NoWarehouseError(f"no warehouse at {url.removeprefix('sqlite:///')}")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            revision = MigrationContext.configure(conn).get_current_revision()
    except sa.exc.DBAPIError as err:
        reason = str(err.orig).strip().splitlines()[0]
        raise WarehouseUnreachableError(f"the warehouse {shown} does not answer: {reason}") from err
    finally:
        engine.dispose()
    if revision is None:
        raise NoWarehouseError(f"no desk warehouse in {shown} (the database has no desk tables)")
    return revision


def _pending_revisions(current: str | None) -> list[str]:
    """Revisions between ``current`` and the head, oldest first.

    Raises:
        WarehouseError: ``current`` is not a revision of this code (a newer desk migrated the
            warehouse); running older code against it would corrupt it.
    """
    script = ScriptDirectory.from_config(_alembic_config())
    if current is not None and current not in {s.revision for s in script.walk_revisions()}:
        raise WarehouseError(
            f"the warehouse schema is at revision {current}, which this desk does not know "
            f"(its latest is {schema_head()}); upgrade desk_pipeline before using this warehouse"
        )
    return [s.revision for s in script.iterate_revisions("head", current)][::-1]


def _serialised(conn: sa.Connection, what: str) -> None:
    """Hold ``what``'s lock until ``conn``'s transaction ends.

    PostgreSQL: a transaction-scoped advisory lock keyed by ``what`` and the schema, released
    at commit or rollback (or when a killed process's connection drops). Writers that insert
    the same new keys (a migration's tables, the first batch of a source) queue on it instead
    of failing on a unique violation. SQLite needs nothing: every transaction starts with
    ``BEGIN IMMEDIATE``, which already admits one writer at a time.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:what || '.' || current_schema()))"),
            {"what": f"desk_pipeline.{what}"},
        )


def _analyze_if_grown(conn: sa.Connection, tables: Sequence[sa.Table], added: int) -> None:
    """Refresh PostgreSQL's statistics of tables a write grew by ``ANALYZE_GROWTH`` or more.

    Without statistics PostgreSQL estimated that looking up a tick's 1,000 trade ids by the
    first column of trade_versions' key matched a tenth of a million-row table, and scanned
    all of it: the tick grew with the trades booked before it. Autovacuum analyses too, but
    later. Statistics scale with the table, so small writes never need this.
    """
    if conn.dialect.name != "postgresql" or added == 0:
        return
    for table in tables:
        estimate = conn.exec_driver_sql(
            f"SELECT reltuples FROM pg_class WHERE oid = '{table.name}'::regclass"
        ).scalar()
        # reltuples is -1 until the table is first analysed.
        if estimate is None or estimate < 0 or added >= ANALYZE_GROWTH * estimate:
            conn.exec_driver_sql(f"ANALYZE {table.name}")


def _insert_for(conn: sa.Connection, table: sa.Table) -> Any:
    dialect = conn.dialect.name
    if dialect == "sqlite":
        return sqlite.insert(table)
    if dialect == "postgresql":
        return postgresql.insert(table)
    raise WarehouseError(f"unsupported warehouse dialect {dialect!r}; use SQLite or PostgreSQL")


def _upsert(
    conn: sa.Connection,
    table: sa.Table,
    rows: list[dict[str, Any]] | pd.DataFrame,
    *,
    keys: list[str],
    newer: str | None = None,
    older: str | None = None,
) -> None:
    """Insert rows; on a key conflict take the row with the higher ``newer`` / lower ``older``.

    A frame (one row per key) takes the bulk path of :func:`_bulk_upsert`.
    """
    if isinstance(rows, pd.DataFrame):
        _bulk_upsert(conn, table, rows, keys=keys, newer=newer, older=older)
        return
    if not rows:
        return
    insert = _insert_for(conn, table)
    columns = [c for c in rows[0] if c not in keys]
    if newer is not None:
        condition = insert.excluded[newer] > table.c[newer]
    elif older is not None:
        condition = insert.excluded[older] < table.c[older]
    else:
        condition = None  # as in _bulk_upsert: the row always replaces the stored one
    stmt = insert.on_conflict_do_update(
        index_elements=keys, set_={c: insert.excluded[c] for c in columns}, where=condition
    )
    for chunk in _chunks(rows, 10_000):
        conn.execute(stmt, chunk)


def _insert(
    conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]] | pd.DataFrame
) -> None:
    if isinstance(rows, pd.DataFrame):
        _bulk_insert(conn, table, rows)
        return
    for chunk in _chunks(rows, 50_000):
        conn.execute(table.insert(), chunk)


def _bulk_values(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """The frame's rows as tuples of Python values, missing values as None (SQL NULL).

    Float columns keep NaN as a float, as SQLAlchemy's executemany passed it.
    """
    columns = []
    for name in frame.columns:
        column = frame[name]
        if not pd.api.types.is_float_dtype(column) and column.isna().any():
            column = column.astype(object).where(column.notna(), None)
        columns.append(column.tolist())
    return list(zip(*columns, strict=True))


def _nulls_as_none(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every missing value as None (SQL NULL), NaN floats included.

    Only columns with gaps are boxed as objects: boxing every cell dominated large writes.
    """
    gaps = [name for name in frame.columns if frame[name].isna().any()]
    boxed = {name: frame[name].astype(object).where(frame[name].notna(), None) for name in gaps}
    return frame.assign(**boxed) if boxed else frame


def _driver(conn: sa.Connection) -> Any:
    """The driver's own connection under ``conn`` (psycopg or sqlite3), for the bulk paths.

    Raises:
        WarehouseError: ``conn`` holds no driver connection (it was invalidated).
    """
    raw = conn.connection.driver_connection
    if raw is None:
        raise WarehouseError("the warehouse connection was invalidated; retry the operation")
    return raw


def _bulk_insert(
    conn: sa.Connection, table: sa.Table, frame: pd.DataFrame, *, into: str | None = None
) -> None:
    """Insert a frame (columns named as the table's) through the driver's fast path.

    Bypasses SQLAlchemy's per-row parameter processing, which dominated year-long backfills:
    binary COPY on PostgreSQL, one prepared executemany on SQLite. Runs in ``conn``'s
    transaction. ``into`` names a staging table shaped like ``table`` to fill instead.
    """
    if frame.empty:
        return
    target = into or table.name
    names = ", ".join(frame.columns)
    raw = _driver(conn)
    try:
        if conn.dialect.name == "postgresql":
            with (
                raw.cursor() as cursor,
                cursor.copy(f"COPY {target} ({names}) FROM STDIN (FORMAT BINARY)") as copy,
            ):
                # Binary rows, typed from the table: half the client time of text COPY.
                copy.set_types([_copy_type(table.c[name]) for name in frame.columns])
                for row in _bulk_values(frame):
                    copy.write_row(row)
            return
        marks = ", ".join("?" * len(frame.columns))
        raw.executemany(f"INSERT INTO {target} ({names}) VALUES ({marks})", _bulk_values(frame))
    except conn.dialect.loaded_dbapi.Error as err:
        # Re-raised as SQLAlchemy's own error, so _transaction names the operation as usual.
        raise sa.exc.DBAPIError.instance(
            f"bulk insert into {target}", None, err, conn.dialect.loaded_dbapi.Error
        ) from err


def _copy_type(column: sa.Column[Any]) -> str:
    """The PostgreSQL type name psycopg's binary COPY dumps ``column``'s values as."""
    kind = column.type
    for sql_type, name in (
        (sa.Boolean, "bool"),
        (sa.BigInteger, "int8"),
        (sa.Integer, "int4"),
        (sa.Float, "float8"),
        (sa.Text, "text"),
        (sa.String, "varchar"),
    ):
        if isinstance(kind, sql_type):
            return name
    raise WarehouseError(f"no binary COPY type for {column.table.name}.{column.name} ({kind})")


def _bulk_upsert(
    conn: sa.Connection,
    table: sa.Table,
    frame: pd.DataFrame,
    *,
    keys: list[str],
    newer: str | None = None,
    older: str | None = None,
) -> None:
    """:func:`_upsert` for a frame with one row per key, through the driver's fast path.

    Without ``newer`` or ``older`` a row always replaces the stored row with its key.
    PostgreSQL: COPY into a transaction-scoped staging table, then one set-based
    INSERT ... SELECT ... ON CONFLICT. SQLite: one prepared executemany of the upsert.
    """
    if frame.empty:
        return
    name = table.name
    names = ", ".join(frame.columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in frame.columns if c not in keys)
    conflict = f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
    if newer is not None:
        conflict += f" WHERE excluded.{newer} > {name}.{newer}"
    elif older is not None:
        conflict += f" WHERE excluded.{older} < {name}.{older}"
    if conn.dialect.name == "postgresql":
        stage = f"stage_{name}"
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS pg_temp.{stage}")
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {names} FROM {name} WITH NO DATA"
        )
        _bulk_insert(conn, table, frame, into=stage)
        conn.exec_driver_sql(f"INSERT INTO {name} ({names}) SELECT {names} FROM {stage} {conflict}")
        return
    marks = ", ".join("?" * len(frame.columns))
    try:
        _driver(conn).executemany(
            f"INSERT INTO {name} ({names}) VALUES ({marks}) {conflict}", _bulk_values(frame)
        )
    except conn.dialect.loaded_dbapi.Error as err:
        raise sa.exc.DBAPIError.instance(
            f"bulk upsert into {name}", None, err, conn.dialect.loaded_dbapi.Error
        ) from err


def _chunks(items: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _read(conn: sa.Connection, query: sa.Select[Any], *, raw: bool = False) -> pd.DataFrame:
    """Run ``query`` into a frame; ``raw`` fetches the driver's tuples directly.

    ``raw`` skips SQLAlchemy's row objects, which dominated reads of millions of trades; use it
    only for columns that need no result processing (strings, integers, floats).
    """
    result = conn.execute(query)
    names = list(result.keys())
    # Plain tuples: pandas probes SQLAlchemy's Row objects attribute by attribute, slowly.
    rows = result.cursor.fetchall() if raw else [tuple(row) for row in result.all()]
    if not rows or len(set(names)) < len(names):
        return pd.DataFrame(rows, columns=names)
    # from_records converts the tuples in one pass: three times faster than column lists.
    return pd.DataFrame.from_records(rows, columns=names)


def _rows_by_trade_id(conn: sa.Connection, table: sa.Table, trade_ids: list[str]) -> pd.DataFrame:
    """Rows of ``table`` whose trade_id is in ``trade_ids``, by primary-key lookups.

    Plain driver SQL: SQLAlchemy's expansion of large IN lists cost more than the lookups.
    PostgreSQL takes the ids as one array parameter (``= ANY``); SQLite in chunks of ``CHUNK``.
    """
    names = [c.name for c in table.columns]
    select = f"SELECT {', '.join(names)} FROM {table.name} WHERE trade_id"
    raw = _driver(conn)
    rows: list[Any] = []
    try:
        if conn.dialect.name == "postgresql":
            with raw.cursor() as cursor:
                cursor.execute(f"{select} = ANY(%s)", (trade_ids,))
                rows = cursor.fetchall()
        else:
            for chunk in _chunks(trade_ids):
                marks = ", ".join("?" * len(chunk))
                rows.extend(raw.execute(f"{select} IN ({marks})", chunk).fetchall())
    except conn.dialect.loaded_dbapi.Error as err:
        raise sa.exc.DBAPIError.instance(
            f"lookup in {table.name}", None, err, conn.dialect.loaded_dbapi.Error
        ) from err
    if not rows:
        return pd.DataFrame(columns=names)
    return pd.DataFrame.from_records(rows, columns=names)


def _read_empty(table: sa.Table) -> pd.DataFrame:
    return pd.DataFrame(columns=[c.name for c in table.columns])


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


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """``frame``'s rows as dicts by column name, the parameter shape SQLAlchemy executes."""
    # The stubs key records by Hashable; the frames here are labelled by table column names.
    return cast(list[dict[str, Any]], frame.to_dict(orient="records"))


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


def _digests(snapshots: pd.DataFrame, headers: pd.DataFrame) -> list[str]:
    """Order-independent digest of each (book_id, business_date)'s rows, aligned with headers."""
    rows = snapshots.sort_values(["book_id", "business_date"], kind="stable")
    hashes = pd.util.hash_pandas_object(
        rows[["instrument_id", "quantity", "avg_price", "realized_pnl"]], index=False
    ).to_numpy()
    starts = np.flatnonzero(~rows.duplicated(["book_id", "business_date"]).to_numpy())
    sums = np.add.reduceat(hashes, starts) if len(starts) else np.array([], dtype=np.uint64)
    return [f"{int(s):016x}" for s in sums]


def _joined_ids(ids: pd.Series) -> str:
    """Trade ids behind a stale mark, for operators; capped so a bulk correction stays small."""
    return ",".join(sorted(set(ids)))[:10_000]


def _outbox_row(write: EodWrite, stamp: int) -> dict[str, Any]:
    event = PositionSnapshotCreated(
        book_id=write.book_id,
        business_date=write.business_date,
        as_of=write.as_of.to_pydatetime(),
        snapshot_id=write.snapshot_id,
        position_count=write.position_count,
        restatement=write.restatement,
        occurred_at=from_micros(stamp).to_pydatetime(),
    )
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "book_id": write.book_id,
        "business_date": write.business_date,
        "payload": event.to_json(),
        "created_at_us": stamp,
        "attempts": 0,
    }


# ---- reference data and marks: rows in and out of the reference tables ----------------------


@dataclasses.dataclass(frozen=True)
class ReferenceData:
    """Stored reference data and marks, typed with the schema's dtypes.

    Attributes:
        instruments: INSTRUMENT_DTYPES.
        books: BOOK_DTYPES.
        prices: PRICE_DTYPES.
        fx_rates: FX_DTYPES.
    """

    instruments: pd.DataFrame
    books: pd.DataFrame
    prices: pd.DataFrame
    fx_rates: pd.DataFrame


def _reference_rows(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows for a reference table: dates as YYYY-MM-DD, missing values as NULL, one per key."""
    rows = frame.drop_duplicates(keys, keep="last")
    dates = {
        str(name): values.dt.strftime("%Y-%m-%d")
        for name, values in rows.items()
        if pd.api.types.is_datetime64_any_dtype(values)
    }
    return _nulls_as_none(rows.assign(**dates))


def _store_quarantine(conn: sa.Connection, quarantined: pd.DataFrame | None, stamp: int) -> int:
    """Quarantine each distinct rejected input once and record every source it arrived in.

    Returns the number of inputs not in the quarantine before.
    """
    if quarantined is None or quarantined.empty:
        return 0
    rows = conform(quarantined, QUARANTINE_DTYPES).assign(
        fingerprint=rejection_fingerprints(quarantined).to_numpy(), quarantined_at_us=stamp
    )
    q = t.quarantine
    fingerprints = list(rows["fingerprint"].unique())

    def stored() -> dict[str, int]:
        found: dict[str, int] = {}
        for chunk in _chunks(fingerprints):
            query = sa.select(q.c.fingerprint, q.c.id).where(q.c.fingerprint.in_(chunk))
            found.update(conn.execute(query).tuples().all())
        return found

    known = stored()
    new = rows.loc[~rows["fingerprint"].isin(known)].drop_duplicates("fingerprint")
    _insert(conn, q, _records(new))
    ids = rows["fingerprint"].map(stored() if len(new) else known)
    arrivals = (
        rows.assign(quarantine_id=ids.to_numpy(), arrived_at_us=stamp)
        .drop_duplicates(["quarantine_id", "source"])
        .loc[:, ["quarantine_id", "source", "row_number", "arrived_at_us"]]
    )
    stmt = _insert_for(conn, t.quarantine_arrivals).on_conflict_do_nothing()
    conn.execute(stmt, _records(arrivals))
    return len(new)


def _dated(rows: pd.DataFrame, column: str, dtypes: Any) -> pd.DataFrame:
    """Stored reference rows typed with ``dtypes``, the YYYY-MM-DD ``column`` as dates."""
    if rows.empty:
        return empty_frame(dtypes)
    typed = conform(rows.assign(**{column: pd.to_datetime(rows[column])}), dtypes)
    # NULL text reads back as NaN under pandas 3; the domain's frames use None.
    text = [c for c, dtype in dtypes.items() if dtype == "object"]
    typed[text] = typed[text].astype(object).where(typed[text].notna(), None)
    return typed
