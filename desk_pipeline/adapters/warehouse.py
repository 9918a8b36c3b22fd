"""The warehouse: every read and write of trades, snapshots, rankings, quarantine and outbox."""

import dataclasses
import datetime as dt
import hashlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.dialects import postgresql, sqlite

from desk_pipeline.adapters import tables as t
from desk_pipeline.domain.errors import DeskPipelineError
from desk_pipeline.domain.schema import (
    CANCEL,
    POSITION_DTYPES,
    QUARANTINE_DTYPES,
    RANKING_DTYPES,
    TRADE_COLUMNS,
    TRADE_DTYPES,
    conform,
    empty_frame,
)
from desk_pipeline.domain.snapshots import PositionSnapshotCreated, snapshot_id_for
from desk_pipeline.domain.trades import latest_versions, split_conflicting_duplicates

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
# Bound parameters per IN list: well under SQLite's 32,766 and PostgreSQL's 65,535 limits.
CHUNK = 5000


class WarehouseError(DeskPipelineError):
    """A warehouse read or write failed; the message names the operation."""


def to_micros(ts: pd.Timestamp) -> int:
    """A tz-aware timestamp as integer microseconds since the epoch (UTC)."""
    return int(pd.Timestamp(ts).tz_convert("UTC").value // 1000)


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
        self.migrate()

    def migrate(self) -> None:
        """Apply every pending Alembic migration."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    @contextmanager
    def _transaction(self, operation: str) -> Iterator[sa.Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as err:
            raise WarehouseError(f"{operation}: {err}") from err

    # ---- ingestion -------------------------------------------------------------------------

    def ingest(
        self, source: str, received: int, trades: pd.DataFrame, rejected: pd.DataFrame
    ) -> IngestResult:
        """Store one batch atomically: new trade versions, the latest-version index, quarantine.

        Re-ingesting the same batch (same source and content) changes nothing. A version already
        stored with other content is quarantined as a conflicting duplicate. A version that
        changes a trade already covered by a stored snapshot writes a stale mark for its book.
        """
        digest = content_digest(trades) + content_digest(rejected)
        digest = hashlib.sha256(digest.encode()).hexdigest()
        stamp = now_micros()
        with self._transaction(f"ingest {source}") as conn:
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
            stale_books = self._advance_current(conn, new, stamp)
            _insert(conn, t.quarantine, _quarantine_rows(quarantined, stamp))
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

    def _versions(self, conn: sa.Connection, trade_ids: Sequence[str]) -> pd.DataFrame:
        frames = [
            _read(conn, sa.select(t.trade_versions).where(t.trade_versions.c.trade_id.in_(chunk)))
            for chunk in _chunks(list(trade_ids))
        ]
        return _trades_frame(pd.concat(frames) if frames else _read_empty(t.trade_versions))

    def _advance_current(self, conn: sa.Connection, new: pd.DataFrame, stamp: int) -> list[str]:
        """Point current_trades at newer versions; mark snapshots that the change affects stale."""
        if new.empty:
            return []
        incoming = latest_versions(new)
        current = pd.concat(
            [
                _read(
                    conn,
                    sa.select(t.current_trades).where(t.current_trades.c.trade_id.in_(chunk)),
                )
                for chunk in _chunks(list(incoming["trade_id"]))
            ]
        )
        merged = incoming.merge(
            current[["trade_id", "version", "book_id", "trade_time_us"]].rename(
                columns={"version": "old_version", "book_id": "old_book", "trade_time_us": "old_us"}
            ),
            on="trade_id",
            how="left",
        )
        advancing = merged[merged["version"] > merged["old_version"].fillna(0)]
        rows = _trade_rows(advancing[list(TRADE_COLUMNS)], source=None, stamp=None)
        _upsert(conn, t.current_trades, rows, keys=["trade_id"], newer="version")

        # Both the new version's book/time and the replaced version's are affected.
        touched = pd.concat(
            [
                pd.DataFrame(
                    {
                        "book_id": advancing["book_id"],
                        "time_us": [to_micros(x) for x in advancing["trade_time"]],
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
        earliest = touched.groupby("book_id").agg(
            from_time_us=("time_us", "min"), trade_ids=("trade_id", _joined_ids)
        )
        earliest["covered_us"] = self._covered_until(conn, list(earliest.index))
        late = earliest[earliest["from_time_us"] < earliest["covered_us"]]
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
        """Per book, the latest instant a stored snapshot (EOD or intraday) covers; -1 if none."""
        eod = _read(
            conn,
            sa.select(
                t.eod_snapshots.c.book_id, sa.func.max(t.eod_snapshots.c.as_of_us).label("us")
            ).group_by(t.eod_snapshots.c.book_id),
        ).set_index("book_id")["us"]
        intraday = conn.execute(sa.select(sa.func.max(t.intraday_windows.c.window_end_us))).scalar()
        covered = eod.reindex(books).fillna(-1).to_numpy(dtype="int64")
        return np.maximum(covered, -1 if intraday is None else int(intraday))

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
            headers = headers[~_stale(headers, marks)]
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
            windows = windows[~_stale(windows, marks, any_book=True)]
            eod_until = latest["as_of_us"].max() if len(latest) else -1
            if len(windows) and windows["as_of_us"].iloc[0] >= eod_until:
                end_us = int(windows["as_of_us"].iloc[0])
                positions = _read(
                    conn,
                    sa.select(t.intraday_positions).where(
                        t.intraday_positions.c.window_end_us == end_us
                    ),
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
            rows = _read(conn, query)
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
            return _trades_frame(_read(conn, query))

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
            _insert(conn, t.intraday_positions, rows.to_dict(orient="records"))
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
        header_rows = headers[
            [
                "book_id",
                "business_date",
                "snapshot_id",
                "as_of_us",
                "computed_at_us",
                "position_count",
                "content_digest",
            ]
        ].to_dict(orient="records")
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
                ].to_dict(orient="records"),
            )
            writes = [
                EodWrite(
                    book_id=r.book_id,
                    business_date=r.business_date,
                    snapshot_id=r.snapshot_id,
                    as_of=r.as_of,
                    position_count=int(r.position_count),
                    restatement=bool(r.previous_as_of_us == r.as_of_us),
                )
                for r in won.itertuples()
            ]
            _insert(conn, t.outbox, [_outbox_row(w, read_at_us) for w in writes])
        return writes

    def eod(self, book_id: str, business_date: str) -> tuple[dict[str, Any], pd.DataFrame] | None:
        """The stored end-of-day of one book and day: header and every position row, or None.

        One statement joins header and rows, so a reader never sees a mix of two snapshots.
        """
        e, p = t.eod_snapshots, t.eod_positions
        query = (
            sa.select(
                e.c.snapshot_id,
                e.c.as_of_us,
                e.c.computed_at_us,
                p.c.instrument_id,
                p.c.quantity,
                p.c.avg_price,
                p.c.realized_pnl,
            )
            .select_from(e.outerjoin(p, p.c.snapshot_id == e.c.snapshot_id))
            .where(e.c.book_id == book_id, e.c.business_date == business_date)
            .order_by(p.c.instrument_id)
        )
        with self._transaction("eod") as conn:
            rows = _read(conn, query)
        if rows.empty:
            return None
        header = {
            "book_id": book_id,
            "business_date": business_date,
            "snapshot_id": rows["snapshot_id"].iloc[0],
            "as_of": from_micros(int(rows["as_of_us"].iloc[0])),
        }
        positions = rows.dropna(subset=["instrument_id"]).assign(book_id=book_id)
        return header, conform(positions, POSITION_DTYPES)

    def eod_positions(self, business_dates: Sequence[str]) -> pd.DataFrame:
        """Stored EOD rows of the given days: business_date, snapshot_id, as_of and positions."""
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
            .where(p.c.business_date.in_(list(business_dates)))
        )
        with self._transaction("eod_positions") as conn:
            rows = _read(conn, query)
        return rows.assign(as_of=from_micros(rows["as_of_us"].to_numpy())).drop(columns="as_of_us")

    def eod_headers(self) -> pd.DataFrame:
        """Every stored EOD header, with ``stale`` and the trades that made it stale."""
        with self._transaction("eod_headers") as conn:
            headers = _read(conn, sa.select(t.eod_snapshots))
            marks = _read(conn, sa.select(t.stale_marks))
        return headers.assign(stale=_stale(headers, marks))

    def stale_marks(self) -> pd.DataFrame:
        """Every stale mark: book, earliest affected time, when and why (trade ids)."""
        with self._transaction("stale_marks") as conn:
            return _read(conn, sa.select(t.stale_marks))

    # ---- collateral -------------------------------------------------------------------------

    def replace_rankings(self, ranking: pd.DataFrame) -> int:
        """Replace the stored ranking of every (book, day) present in ``ranking``, atomically."""
        r = t.collateral_rankings
        keys = ranking[["book_id", "business_date"]].drop_duplicates()
        rows = ranking.assign(as_of_us=ranking["as_of"].map(to_micros)).drop(columns="as_of")
        rows = rows.astype(object).where(rows.notna(), None)
        with self._transaction("replace_rankings") as conn:
            if len(keys):
                conn.execute(
                    r.delete().where(
                        r.c.book_id == sa.bindparam("b"), r.c.business_date == sa.bindparam("d")
                    ),
                    [{"b": b, "d": d} for b, d in keys.itertuples(index=False)],
                )
            _insert(conn, r, rows.to_dict(orient="records"))
        return len(rows)

    def ranking(self, book_id: str, business_date: str) -> pd.DataFrame:
        """The stored ranking of one book and day (empty when none)."""
        r = t.collateral_rankings
        query = sa.select(r).where(r.c.book_id == book_id, r.c.business_date == business_date)
        with self._transaction("ranking") as conn:
            rows = _read(conn, query)
        rows = rows.assign(as_of=from_micros(rows["as_of_us"].to_numpy())).drop(columns="as_of_us")
        rows["rank"] = rows["rank"].astype(RANKING_DTYPES["rank"])
        order = rows.assign(_ineligible=~rows["eligible"].astype(bool))
        order = order.sort_values(["_ineligible", "rank", "instrument_id"], kind="stable")
        return order.drop(columns="_ineligible").reset_index(drop=True)

    # ---- quarantine and outbox ----------------------------------------------------------------

    def quarantined(self) -> pd.DataFrame:
        """Every rejected input row, oldest first."""
        with self._transaction("quarantined") as conn:
            return _read(conn, sa.select(t.quarantine).order_by(t.quarantine.c.id))

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

    def _eod_rows(self, conn: sa.Connection, snapshot_ids: list[str]) -> pd.DataFrame:
        frames = [
            _read(conn, sa.select(t.eod_positions).where(t.eod_positions.c.snapshot_id.in_(chunk)))
            for chunk in _chunks(snapshot_ids)
        ]
        return pd.concat(frames) if frames else _read_empty(t.eod_positions)


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
    rows: list[dict[str, Any]],
    *,
    keys: list[str],
    newer: str | None = None,
    older: str | None = None,
) -> None:
    """Insert rows; on a key conflict take the row with the higher ``newer`` / lower ``older``."""
    if not rows:
        return
    insert = _insert_for(conn, table)
    columns = [c for c in rows[0] if c not in keys]
    if newer is not None:
        condition = insert.excluded[newer] > table.c[newer]
    else:
        condition = insert.excluded[older] < table.c[older]
    stmt = insert.on_conflict_do_update(
        index_elements=keys, set_={c: insert.excluded[c] for c in columns}, where=condition
    )
    for chunk in _chunks(rows, 10_000):
        conn.execute(stmt, chunk)


def _insert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    for chunk in _chunks(rows, 50_000):
        conn.execute(table.insert(), chunk)


def _chunks(items: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _read(conn: sa.Connection, query: sa.Select[Any]) -> pd.DataFrame:
    result = conn.execute(query)
    return pd.DataFrame(result.all(), columns=list(result.keys()))


def _read_empty(table: sa.Table) -> pd.DataFrame:
    return pd.DataFrame(columns=[c.name for c in table.columns])


def _stale(headers: pd.DataFrame, marks: pd.DataFrame, *, any_book: bool = False) -> pd.Series:
    """Which snapshots a later stale mark covers.

    A mark covers a snapshot of the same book (any book for intraday windows) when the mark
    starts before the snapshot's as_of and was written after the snapshot was computed.
    """
    if headers.empty or marks.empty:
        return pd.Series(False, index=headers.index, dtype=bool)
    on = {"how": "cross"} if any_book else {"on": "book_id"}
    left = headers[["as_of_us", "computed_at_us"]].assign(
        _row=np.arange(len(headers)), book_id=headers["book_id"]
    )
    pairs = left.merge(marks[["book_id", "from_time_us", "marked_at_us"]], **on)
    hit = pairs[
        (pairs["from_time_us"] < pairs["as_of_us"])
        & (pairs["marked_at_us"] > pairs["computed_at_us"])
    ]["_row"].unique()
    flags = np.zeros(len(headers), dtype=bool)
    flags[hit] = True
    return pd.Series(flags, index=headers.index)


def _trade_rows(
    trades: pd.DataFrame, *, source: str | None, stamp: int | None
) -> list[dict[str, Any]]:
    frame = trades.loc[:, list(TRADE_COLUMNS)].copy()
    frame["trade_time_us"] = frame.pop("trade_time").dt.tz_convert("UTC").astype("int64") // 1000
    frame["trade_time_us"] = frame["trade_time_us"].astype("int64")
    if source is not None:
        frame["source"] = source
        frame["ingested_at_us"] = stamp
    return frame.to_dict(orient="records")


def _trades_frame(rows: pd.DataFrame) -> pd.DataFrame:
    if rows.empty:
        return empty_frame(TRADE_DTYPES)
    frame = rows.assign(trade_time=from_micros(rows["trade_time_us"].to_numpy(dtype="int64")))
    return conform(frame, TRADE_DTYPES)


def _quarantine_rows(quarantined: pd.DataFrame, stamp: int) -> list[dict[str, Any]]:
    return (
        conform(quarantined, QUARANTINE_DTYPES)
        .assign(quarantined_at_us=stamp)
        .to_dict(orient="records")
    )


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
