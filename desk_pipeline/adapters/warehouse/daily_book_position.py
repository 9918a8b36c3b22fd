"""Daily book positions: each book's stored end-of-day snapshot per business day (keep-last).

Owns ``eod_snapshots`` (one header per book and day) and ``eod_positions`` (its rows); the
keep-last write itself is in keep_last.py. Other stores reach these tables only through the
functions here that take their connection: the opening state (:func:`_eod_headers_until`,
:func:`_eod_rows_of`), ingestion's coverage (:func:`_latest_eod_as_of`) and the collateral
writes, which lock the current headers (:func:`_lock_current_eods`), read a valued EOD in one
statement (:func:`_one_eod`), read every header beside its valuation and ranking
(:func:`_eod_headers_beside`) and read a day's headers with its rankings
(:func:`_eod_headers_joined`).
"""

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.warehouse.bulk import _chunks, _read, _read_empty
from desk_pipeline.adapters.warehouse.codec import from_micros, with_quantity
from desk_pipeline.adapters.warehouse.engine import Store, WarehouseError
from desk_pipeline.adapters.warehouse.keep_last import (
    EodWrite,
    _apply,
    _candidates,
    _LostRace,
    _recomputed_days,
)
from desk_pipeline.adapters.warehouse.trading_book import _late_changes
from desk_pipeline.domain.positions.restatement import stale_snapshots
from desk_pipeline.domain.schema import (
    POSITION_DTYPES,
    POSITION_STATE_COLUMNS,
    conform,
    require_columns,
)

log = logging.getLogger(__name__)

# Decisions per keep_last_eod call: a lost compare-and-set re-reads and decides again. Each
# loss means another writer committed, so N concurrent writers need at most N - 1 retries.
MAX_ATTEMPTS = 20


class DailyBookPositionStore(Store):
    """End-of-day snapshots written as keep-last decides, with their events, and read back."""

    def keep_last_eod(
        self,
        snapshots: pd.DataFrame,
        read_at_us: int,
        recomputed: pd.DataFrame | None = None,
    ) -> list[EodWrite]:
        """Store end-of-day snapshots as ``keep_last`` decides, with their events, atomically.

        One transaction: read the stored headers of the book-days concerned, decide with
        ``domain.positions.snapshots.keep_last``, write the winners with compare-and-set against the
        headers read (insert only if still absent, update only if the stored ``snapshot_id``
        and ``computed_at`` are still those read). A concurrent writer that committed in
        between makes the compare-and-set fail: the transaction rolls back and the decision is
        taken again on a fresh read.

        Args:
            snapshots: ``business_date``, ``as_of`` and POSITION_STATE_COLUMNS (the exact
                micro-units are stored); one snapshot per (book_id, business_date), all rows
                of a book-day sharing one ``as_of``.
            read_at_us: when the inputs were read; the computation's ``computed_at``.
            recomputed: ``business_date`` and ``as_of`` (UTC) of every day the computation
                covered for every book: a stored EOD of such a day that ``snapshots`` has no
                rows for is emptied (the book holds nothing any more). None: no day was.

        Returns:
            The snapshots that replaced (or created) the stored EOD, empty ones included. An
            older snapshot, or one with the stored content, writes no rows and emits no event.

        Raises:
            WarehouseError: every attempt lost to a concurrent writer, or the write failed.
        """
        require_columns(
            snapshots, ["business_date", "as_of", *POSITION_STATE_COLUMNS], where="keep_last_eod"
        )
        candidates = _candidates(snapshots, read_at_us)
        days = _recomputed_days(recomputed, read_at_us)
        if candidates.empty and days.empty:
            return []
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with self._transaction("keep_last_eod") as conn:
                    return _apply(conn, snapshots, candidates, days, read_at_us)
            except _LostRace as lost:
                log.info(
                    "keep_last_eod: attempt %d lost a race (%s); deciding again", attempt, lost
                )
        raise WarehouseError(
            f"keep_last_eod: {MAX_ATTEMPTS} attempts each lost to a concurrent writer of the same "
            f"book-days; run again"
        )

    def eod(self, book_id: str, business_date: str) -> tuple[dict[str, Any], pd.DataFrame] | None:
        """The stored end-of-day of one book and day: header and every position row, or None.

        One statement joins header and rows, so a reader never sees a mix of two snapshots.
        """
        with self._transaction("eod") as conn:
            found = _one_eod(conn, book_id, business_date)
        if found is None:
            return None
        header, held = found
        return header, conform(held, POSITION_DTYPES)

    def latest_eods(self) -> pd.DataFrame:
        """Every book's latest stored EOD: book_id, business_date, snapshot_id, as_of, positions.

        Positions are POSITION_STATE_COLUMNS, as for :meth:`eod_positions`.

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
        """Stored EOD rows of the given days: business_date, snapshot_id, as_of and positions.

        Positions are POSITION_STATE_COLUMNS: the stored micro-units and the float quantity.
        """
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
                p.c.quantity_micro_units,
                p.c.avg_price,
                p.c.realized_pnl,
            )
            .select_from(p.join(e, e.c.snapshot_id == p.c.snapshot_id))
            .where(where)
            .order_by(*order_by)
        )
        with self._transaction(operation) as conn:
            rows = _read(conn, query, raw=True)
        rows = with_quantity(rows)
        return rows.assign(as_of=from_micros(rows["as_of_us"].to_numpy())).drop(columns="as_of_us")

    def eod_headers(self) -> pd.DataFrame:
        """Every stored EOD header, with ``stale`` and the trades that made it stale."""
        with self._transaction("eod_headers") as conn:
            headers = _read(conn, sa.select(t.eod_snapshots))
            changes = _late_changes(conn)
        return headers.assign(stale=stale_snapshots(headers, changes))

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


def _one_eod(
    conn: sa.Connection,
    book_id: str,
    business_date: str,
    beside: sa.Table | None = None,
    columns: Sequence[sa.ColumnElement[Any]] = (),
) -> tuple[dict[str, Any], pd.DataFrame] | None:
    """Header and position rows of one stored EOD, or None; one statement, so never a mix.

    Args:
        conn: the caller's transaction.
        book_id: the book.
        business_date: YYYY-MM-DD.
        beside: a table keyed like ``eod_positions`` by (snapshot_id, instrument_id), outer-
            joined to the rows (the collateral store's valuations), or None.
        columns: columns of ``beside`` to read with each row.

    Returns:
        The header (book_id, business_date, snapshot_id, as_of) and the rows: instrument_id,
        quantity, quantity_micro_units, avg_price, realized_pnl, ``columns`` and book_id, by
        instrument_id.
    """
    e, p = t.eod_snapshots, t.eod_positions
    source = e.outerjoin(p, p.c.snapshot_id == e.c.snapshot_id)
    if beside is not None:
        same_row = (beside.c.snapshot_id == p.c.snapshot_id) & (
            beside.c.instrument_id == p.c.instrument_id
        )
        source = source.outerjoin(beside, same_row)
    query = (
        sa.select(
            e.c.snapshot_id,
            e.c.as_of_us,
            p.c.instrument_id,
            p.c.quantity_micro_units,
            p.c.avg_price,
            p.c.realized_pnl,
            *columns,
        )
        .select_from(source)
        .where(e.c.book_id == book_id, e.c.business_date == business_date)
        .order_by(p.c.instrument_id)
    )
    rows = _read(conn, query)
    if rows.empty:
        return None
    header = {
        "book_id": book_id,
        "business_date": business_date,
        "snapshot_id": rows["snapshot_id"].iloc[0],
        "as_of": from_micros(int(rows["as_of_us"].iloc[0])),
    }
    return header, with_quantity(rows.dropna(subset=["instrument_id"])).assign(book_id=book_id)


def _eod_headers_joined(
    conn: sa.Connection,
    business_date: str,
    book_id: str | None,
    beside: sa.Table,
    columns: Sequence[sa.ColumnElement[Any]],
) -> pd.DataFrame:
    """The stored EOD headers of a day, each with the rows ``beside`` holds for its book-day.

    One statement, so a header is never read beside rows of another moment: rows computed from
    the header's snapshot or from any other, which the caller tells apart. The header is found
    by its primary key (with ``book_id``) and the rows by ``beside``'s (book, day) key prefix.

    Args:
        conn: the caller's transaction.
        business_date: YYYY-MM-DD.
        book_id: only this book's header, or every book's of the day when None.
        beside: a table of rows with ``book_id`` and ``business_date`` (the collateral store's
            rankings), outer-joined on them.
        columns: columns of ``beside`` to read; label any that shares a header column's name.

    Returns:
        book_id, business_date, snapshot_id, as_of_us and position_count of the header, then
        ``columns`` (null where ``beside`` holds no row of the book-day): one row per row of
        ``beside``, one for a header without any. In no particular order; empty when no EOD of
        that day (and book) is stored.
    """
    e = t.eod_snapshots
    same_day = (beside.c.book_id == e.c.book_id) & (beside.c.business_date == e.c.business_date)
    query = (
        sa.select(
            e.c.book_id,
            e.c.business_date,
            e.c.snapshot_id,
            e.c.as_of_us,
            e.c.position_count,
            *columns,
        )
        .select_from(e.outerjoin(beside, same_day))
        .where(e.c.business_date == business_date)
    )
    if book_id is not None:
        query = query.where(e.c.book_id == book_id)
    return _read(conn, query, raw=True)


def _eod_headers_beside(conn: sa.Connection, derived: Mapping[str, sa.Table]) -> pd.DataFrame:
    """Every stored EOD header with what each of ``derived`` holds for it; one statement.

    Each header probes each table by its primary key, on SQLite and PostgreSQL alike: a table
    keyed by snapshot (valuations) for rows of the header's snapshot; a table keyed by book and
    day (rankings) for the snapshot of its first row of the book-day, the one snapshot all of
    them are of (``collateral_ranking._replace_for_current_eods`` writes a book-day's rows from
    one snapshot). Only the days where a header found no rows of its snapshot in a table keyed
    by snapshot are read again, through the day index, for rows of another snapshot. At desk
    scale (17,500 headers, 8.75M rows in each table) this took 1.0 s on PostgreSQL, where
    aggregating each table took 12-14 s.

    Args:
        conn: the caller's transaction.
        derived: name -> a table of rows computed from one EOD snapshot, with ``snapshot_id``,
            ``book_id`` and ``business_date``, keyed by ``snapshot_id`` or by ``book_id`` and
            ``business_date`` first (the collateral store's valuations and rankings).

    Returns:
        book_id, business_date, snapshot_id, as_of_us, position_count, ``has_rows`` (any
        position row, flat ones included) and per name ``<name>_current`` (rows of the
        header's snapshot) and ``<name>_older`` (none of those, but rows of its book-day from
        another snapshot); the flags bool. In no particular order.
    """
    e = t.eod_snapshots
    by_snapshot = {
        name: table
        for name, table in derived.items()
        if next(iter(table.primary_key.columns)).name == "snapshot_id"
    }
    probes: list[sa.ColumnElement[Any]] = []
    for name, table in derived.items():
        if name in by_snapshot:
            probes.append(
                sa.exists().where(table.c.snapshot_id == e.c.snapshot_id).label(f"{name}_current")
            )
        else:
            first = (
                sa.select(table.c.snapshot_id)
                .where(table.c.book_id == e.c.book_id, table.c.business_date == e.c.business_date)
                .limit(1)
                .scalar_subquery()
            )
            probes.append(first.label(f"{name}_snapshot"))
    heads = sa.select(*_header_columns(), *probes).cte("heads")
    source: sa.FromClause = heads
    columns: list[sa.ColumnElement[Any]] = [
        c for c in heads.c if not c.name.endswith(("_current", "_snapshot"))
    ]
    for name, table in derived.items():
        if name not in by_snapshot:
            stored = heads.c[f"{name}_snapshot"]
            columns += [
                sa.func.coalesce(stored == heads.c.snapshot_id, sa.false()).label(
                    f"{name}_current"
                ),
                sa.func.coalesce(stored != heads.c.snapshot_id, sa.false()).label(f"{name}_older"),
            ]
            continue
        current = heads.c[f"{name}_current"]
        behind_days = sa.select(heads.c.business_date).where(sa.not_(current))
        of_days = (
            sa.select(table.c.book_id, table.c.business_date)
            .where(table.c.business_date.in_(behind_days))
            .distinct()
            .subquery(f"{name}_of_behind_days")
        )
        source = source.outerjoin(
            of_days,
            (of_days.c.book_id == heads.c.book_id)
            & (of_days.c.business_date == heads.c.business_date),
        )
        columns += [
            current,
            sa.and_(sa.not_(current), of_days.c.book_id.is_not(None)).label(f"{name}_older"),
        ]
    rows = _read(conn, sa.select(*columns).select_from(source))
    flags = ["has_rows", *(f"{name}_{kind}" for name in derived for kind in ("current", "older"))]
    # SQLite answers 0/1 where PostgreSQL answers booleans.
    return rows.astype(dict.fromkeys(flags, bool))


def _header_columns() -> list[sa.ColumnElement[Any]]:
    """An EOD header's columns for :func:`_eod_headers_beside`, ``has_rows`` included."""
    e, p = t.eod_snapshots, t.eod_positions
    return [
        e.c.book_id,
        e.c.business_date,
        e.c.snapshot_id,
        e.c.as_of_us,
        e.c.position_count,
        # An open position is a row: only an EOD without one is probed for flat rows.
        sa.case(
            (e.c.position_count > 0, sa.true()),
            else_=sa.exists().where(p.c.snapshot_id == e.c.snapshot_id),
        ).label("has_rows"),
    ]


def _latest_eod_as_of(conn: sa.Connection) -> int:
    """The latest ``as_of`` (µs) of any stored EOD; -1 when none is stored."""
    latest = conn.execute(sa.select(sa.func.max(t.eod_snapshots.c.as_of_us))).scalar()
    return -1 if latest is None else int(latest)


def _eod_headers_until(conn: sa.Connection, until_us: int) -> pd.DataFrame:
    """Every stored EOD header (``eod_snapshots`` row) with ``as_of`` at or before ``until_us``."""
    e = t.eod_snapshots
    return _read(conn, sa.select(e).where(e.c.as_of_us <= until_us))


def _eod_rows_of(conn: sa.Connection, snapshot_ids: list[str]) -> pd.DataFrame:
    """The ``eod_positions`` rows of the given snapshots, as stored (micro-units)."""
    p = t.eod_positions
    frames = [
        _read(conn, sa.select(p).where(p.c.snapshot_id.in_(chunk)), raw=True)
        for chunk in _chunks(snapshot_ids)
    ]
    return pd.concat(frames) if frames else _read_empty(p)


def _lock_current_eods(conn: sa.Connection, business_dates: Sequence[str]) -> pd.DataFrame:
    """The current EOD headers of ``business_dates``, locked until ``conn``'s transaction ends.

    PostgreSQL locks the rows (``FOR UPDATE``), so no EOD of these days is replaced before the
    caller commits; SQLite's writer lock already serialises. Returns book_id, business_date and
    snapshot_id.
    """
    e = t.eod_snapshots
    heads = sa.select(e.c.book_id, e.c.business_date, e.c.snapshot_id).with_for_update()
    return pd.concat(
        [_read(conn, heads.where(e.c.business_date.in_(d))) for d in _chunks(list(business_dates))]
    )


def _eod_rows_of_days(
    conn: sa.Connection, business_dates: Sequence[str]
) -> tuple[list[str], list[list[Any]]]:
    """The stored EOD rows of each day, each with its header's ``as_of_us``: driver tuples.

    The rows :meth:`DailyBookPositionStore.eod_positions` reads (a row whose snapshot has no
    header is not read), with only what the ranking's coverage check needs, in no particular
    order; one statement per day (an index serves each). Tuples, not a frame: the caller
    builds one frame of all the days.

    Returns:
        The column names (book_id, instrument_id, snapshot_id, as_of_us, quantity_micro_units)
        and, per day of ``business_dates`` in order, its rows as tuples of those columns' values.
    """
    e, p = t.eod_snapshots, t.eod_positions
    query = sa.select(
        p.c.book_id, p.c.instrument_id, p.c.snapshot_id, e.c.as_of_us, p.c.quantity_micro_units
    ).select_from(p.join(e, e.c.snapshot_id == p.c.snapshot_id))
    days = [
        list(conn.execute(query.where(p.c.business_date == day)).cursor.fetchall())
        for day in business_dates
    ]
    return [c.name for c in query.selected_columns], days
