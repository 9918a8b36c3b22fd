"""Collateral rankings: each book-day's ranking, and the valuation of each end-of-day position.

Owns ``collateral_rankings`` and ``eod_valuations``, both keyed by the EOD snapshot they were
computed from. The EOD itself belongs to the daily book positions: a write locks the days'
current EODs through ``daily_book_position._lock_current_eods``, a read joins its valuation
to one EOD through ``daily_book_position._one_eod``, every EOD is read beside what is stored
of its valuation and ranking through ``daily_book_position._eod_headers_beside`` and a day's
EODs with their rankings through ``daily_book_position._eod_headers_joined``, each in this
store's transaction.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.warehouse.bulk import _chunks, _insert, _read
from desk_pipeline.adapters.warehouse.codec import _nulls_as_none, from_micros, micros_of
from desk_pipeline.adapters.warehouse.daily_book_position import (
    _eod_headers_beside,
    _eod_headers_joined,
    _eod_rows_of_days,
    _lock_current_eods,
    _one_eod,
)
from desk_pipeline.adapters.warehouse.engine import Store
from desk_pipeline.domain.collateral.ranking import in_ranking_order
from desk_pipeline.domain.precision import from_units
from desk_pipeline.domain.schema import (
    POSITION_DTYPES,
    RANKING_DTYPES,
    VALUATION_DTYPES,
    conform,
)

# The ranking columns the ranking checks read (rankings_and_eod_rows).
_CHECKED_RANKING = (
    "book_id",
    "instrument_id",
    "rank",
    "quantity",
    "price",
    "fx_rate",
    "haircut",
    "value",
    "eligible",
)


class CollateralRankingStore(Store):
    """Rankings and valuations, both replaced per business day and read with their snapshot."""

    def replace_rankings(self, business_dates: Sequence[str], ranking: pd.DataFrame) -> int:
        """Replace every stored ranking of ``business_dates`` with ``ranking``, atomically.

        Only rows of the stored EODs are kept: a ranking of a superseded snapshot (the day was
        restated meanwhile by another run) is not written, and stored rows of superseded
        snapshots go, so a book whose EOD no longer holds anything keeps no ranking.

        Args:
            business_dates: the YYYY-MM-DD days ``ranking`` covers.
            ranking: ``business_date``, ``snapshot_id``, ``as_of`` and RANKING_DTYPES rows.

        Returns:
            Rows written.
        """
        rows = _nulls_as_none(
            ranking.assign(as_of_us=micros_of(ranking["as_of"])).drop(columns="as_of")
        )
        with self._transaction("replace_rankings") as conn:
            return _replace_for_current_eods(conn, t.collateral_rankings, business_dates, rows)

    def ranking(self, book_id: str, business_date: str) -> pd.DataFrame:
        """The stored ranking of one book and day (empty when none)."""
        r = t.collateral_rankings
        query = sa.select(r).where(r.c.book_id == book_id, r.c.business_date == business_date)
        with self._transaction("ranking") as conn:
            # Raw: SQLite hands eligible over as 0/1, made boolean by _ranking_as_read.
            rows = _read(conn, query, raw=True)
        return _ranking_as_read(rows)

    def rankings(self, business_dates: Sequence[str]) -> pd.DataFrame:
        """The stored rankings of every book on the given days, ordered by book, day and rank."""
        r = t.collateral_rankings
        query = sa.select(r).where(r.c.business_date.in_(list(business_dates)))
        with self._transaction("rankings") as conn:
            rows = _read(conn, query, raw=True)
        return _ranking_as_read(rows)

    def rankings_beside_eods(
        self, business_date: str, book_id: str | None = None
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The stored EODs of a day (one book's, given ``book_id``) and their book-days' rankings.

        One statement (``daily_book_position._eod_headers_joined``: the header by its key, the
        ranking by its key prefix), so a ranking is judged against the EOD stored at the same
        moment: which snapshot it was computed from is in its rows.

        Returns:
            ``eods``: book_id, business_date, snapshot_id, as_of (UTC) and position_count of
            each stored EOD header of the day, by book_id (none stored: empty).
            ``ranking``: the stored ranking rows of those book-days, as :meth:`rankings` reads
            them (``snapshot_id`` and ``as_of`` of the snapshot each was computed from).
        """
        r = t.collateral_rankings
        ranked = [c for c in r.columns if c.name not in ("book_id", "business_date")]
        # The ranking's own snapshot columns, named apart from the header's.
        own = {"snapshot_id": "ranked_snapshot_id", "as_of_us": "ranked_as_of_us"}
        columns = [c.label(own[c.name]) if c.name in own else c for c in ranked]
        with self._transaction("rankings_beside_eods") as conn:
            rows = _eod_headers_joined(conn, business_date, book_id, r, columns)
        header = ["book_id", "business_date", "snapshot_id", "as_of_us", "position_count"]
        eods = rows.loc[:, header].drop_duplicates("book_id").sort_values("book_id", kind="stable")
        eods = eods.assign(as_of=from_micros(eods["as_of_us"].to_numpy(dtype=np.int64)))
        items = rows.loc[rows["ranked_snapshot_id"].notna()].drop(columns=header[2:])
        items = items.rename(columns={label: name for name, label in own.items()})
        return eods.drop(columns="as_of_us").reset_index(drop=True), _ranking_as_read(items)

    def rankings_and_eod_rows(
        self, business_dates: Sequence[str]
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The stored EOD rows and rankings of the given days, with what the ranking checks use.

        One transaction, so both are of one moment: a restatement committed between two reads
        would show a ranking beside the EOD that replaced its snapshot. Only the columns the
        checks use are read, one day per statement (an index serves each), in no particular
        order. Days and ids come as categoricals whose categories (sorted) both frames share,
        so the checks compare integer codes, never the id strings, and each id column is
        hashed once, here.

        Returns:
            ``positions``: business_date, snapshot_id, as_of, book_id, instrument_id and
            quantity of each row :meth:`DailyBookPositionStore.eod_positions` returns.
            ``ranking``: business_date, book_id, instrument_id, rank, quantity, price, fx_rate,
            haircut, value and eligible of each row :meth:`rankings` returns (typed alike).
        """
        days = sorted(set(business_dates))
        r = t.collateral_rankings
        ranked = sa.select(*(r.c[name] for name in _CHECKED_RANKING))
        with self._transaction("rankings_and_eod_rows") as conn:
            held_columns, held = _eod_rows_of_days(conn, days)
            items = [
                conn.execute(ranked.where(r.c.business_date == day)).cursor.fetchall()
                for day in days
            ]
        on_day = pd.CategoricalDtype(days)
        held_rows, held_days = _by_column(held, len(held_columns), on_day)
        ranked_rows, ranked_days = _by_column(items, len(_CHECKED_RANKING), on_day)
        positions = dict(zip(held_columns, held_rows.T, strict=True))
        ranking = dict(zip(_CHECKED_RANKING, ranked_rows.T, strict=True))
        for name in ("book_id", "instrument_id"):
            positions[name], ranking[name] = _shared_categoricals(positions[name], ranking[name])
        eod = pd.DataFrame(
            {
                "business_date": held_days,
                "snapshot_id": positions["snapshot_id"],
                "as_of": from_micros(positions["as_of_us"].astype(np.int64)),
                "book_id": positions["book_id"],
                "instrument_id": positions["instrument_id"],
                "quantity": from_units(positions["quantity_micro_units"].astype(np.int64)),
            }
        )
        numbers = ("quantity", "price", "fx_rate", "haircut", "value")
        items_frame = pd.DataFrame(
            {
                "business_date": ranked_days,
                "book_id": ranking["book_id"],
                "instrument_id": ranking["instrument_id"],
                # Integers and NULLs: through float (exact below 2**53) to nullable Int64.
                "rank": pd.array(ranking["rank"].astype(np.float64), dtype="Int64"),
                **{name: ranking[name].astype(np.float64) for name in numbers},
                # SQLite hands eligible over as 0/1.
                "eligible": ranking["eligible"].astype(bool),
            }
        )
        return eod, items_frame

    def replace_valuations(self, business_dates: Sequence[str], valuation: pd.DataFrame) -> int:
        """Replace every stored valuation of ``business_dates`` with ``valuation``, atomically.

        Only rows of the stored EODs are kept, as in :meth:`replace_rankings`.

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
            return _replace_for_current_eods(conn, v, business_dates, rows)

    def eod_derivations(self) -> pd.DataFrame:
        """Every stored EOD header with what is stored of its valuation and of its ranking.

        One statement (``daily_book_position._eod_headers_beside``): a probe per header and
        table by primary key, and a read of the days where one lacks rows of its snapshot.

        Returns:
            ``domain.completeness.EOD_DERIVATION_COLUMNS`` plus snapshot_id and as_of_us, one
            row per header, in no particular order.
        """
        with self._transaction("eod_derivations") as conn:
            return _eod_headers_beside(
                conn, {"valuation": t.eod_valuations, "ranking": t.collateral_rankings}
            )

    def valued_eod(
        self, book_id: str, business_date: str
    ) -> tuple[dict[str, Any], pd.DataFrame] | None:
        """The stored EOD of one book and day with each row's stored valuation, or None.

        One statement joins header, rows and valuation on the snapshot id, so a reader never
        sees one snapshot's positions with another's valuation.

        Returns:
            The header (as ``DailyBookPositionStore.eod``) and one row per position:
            POSITION_DTYPES, the valuation columns of VALUATION_DTYPES (``price_date`` a date)
            and ``valued``, False when no valuation of this snapshot is stored (its valuation
            columns are then null).
        """
        v = t.eod_valuations
        valuation = [c for c in v.columns if c.name not in ("snapshot_id", "instrument_id")]
        valuation = [c for c in valuation if c.name not in ("book_id", "business_date")]
        with self._transaction("valued_eod") as conn:
            found = _one_eod(
                conn,
                book_id,
                business_date,
                beside=v,
                columns=[v.c.snapshot_id.label("valued_snapshot_id"), *valuation],
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


def _ranking_as_read(rows: pd.DataFrame) -> pd.DataFrame:
    """Stored ranking rows (driver values) as a ranking is read, in ranking order.

    ``as_of`` (UTC) for ``as_of_us``, ``rank`` nullable, ``eligible`` boolean (SQLite hands it
    over as 0/1).
    """
    rows = rows.assign(as_of=from_micros(rows["as_of_us"].to_numpy(dtype=np.int64)))
    rows = rows.drop(columns="as_of_us").astype({"rank": RANKING_DTYPES["rank"]})
    return in_ranking_order(rows.assign(eligible=rows["eligible"].astype(bool)))


def _replace_for_current_eods(
    conn: sa.Connection, table: sa.Table, business_dates: Sequence[str], rows: pd.DataFrame
) -> int:
    """Replace ``table``'s rows of ``business_dates`` with ``rows``, never with a stale snapshot's.

    A book-day whose ``rows`` were computed from a snapshot a concurrent run has since
    superseded keeps the stored rows of its current snapshot (that run wrote them, or will);
    the stale rows are dropped. Every other stored row of the days is replaced, so a book no
    longer in the EOD keeps nothing. The days' EOD headers are locked until the commit
    (PostgreSQL; SQLite's writer lock already serialises), so no EOD is replaced between the
    comparison and the write. A book that gains its first positions of a day in a concurrent
    run after ``rows`` were computed is not protected: its rows go until a run values or ranks
    the day again. Returns the rows written.
    """
    if not business_dates:
        return 0
    current = _lock_current_eods(conn, business_dates)
    is_current = rows["snapshot_id"].isin(current["snapshot_id"])
    behind = rows.loc[~is_current, ["book_id", "business_date"]].drop_duplicates()
    kept = current.merge(behind, on=["book_id", "business_date"])["snapshot_id"]
    for days in _chunks(list(business_dates)):
        replaced = table.delete().where(table.c.business_date.in_(days))
        conn.execute(replaced.where(table.c.snapshot_id.not_in(list(kept))))
    _insert(conn, table, rows[is_current])
    return int(is_current.sum())


def _by_column(
    days: Sequence[Sequence[Any]], width: int, on_day: pd.CategoricalDtype
) -> tuple[np.ndarray, pd.Categorical]:
    """Driver rows read one day (of ``on_day``, in order) at a time, as one 2-D object array.

    Returns the array (one row per row read, ``width`` columns) and each row's day: a
    categorical of ``on_day``. One array, sliced by column, costs a fraction of a frame built
    from the tuples, which infers every column's type.
    """
    rows = [row for day in days for row in day]
    array = np.empty((len(rows), width), dtype=object)
    if rows:
        array[:] = rows
    codes = np.repeat(np.arange(len(days), dtype=np.int64), [len(day) for day in days])
    return array, pd.Categorical.from_codes(codes, dtype=on_day)


def _shared_categoricals(
    left: np.ndarray, right: np.ndarray
) -> tuple[pd.Categorical, pd.Categorical]:
    """Two text columns as categoricals of one dtype: every id of either, sorted by code point.

    One hash of both columns; the sorted categories keep the ids' order (as Python compares
    strings), so sorting by the column sorts by id.
    """
    codes, distinct = pd.factorize(np.concatenate([left, right]))
    order = np.argsort(np.asarray(distinct, dtype=object), kind="stable")
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    dtype = pd.CategoricalDtype(pd.Index(np.asarray(distinct, dtype=object)[order], dtype=object))
    both = position[codes] if len(codes) else codes.astype(np.int64)
    return (
        pd.Categorical.from_codes(both[: len(left)], dtype=dtype),
        pd.Categorical.from_codes(both[len(left) :], dtype=dtype),
    )
