"""Collateral rankings: each book-day's ranking, and the valuation of each end-of-day position.

Owns ``collateral_rankings`` and ``eod_valuations``, both keyed by the EOD snapshot they were
computed from. The EOD itself belongs to the daily book positions: a write locks the days'
current EODs through ``daily_book_position._lock_current_eods`` and a read joins its valuation
to one EOD through ``daily_book_position._one_eod``, each in this store's transaction.
"""

from collections.abc import Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.warehouse.bulk import _chunks, _insert, _read
from desk_pipeline.adapters.warehouse.codec import _nulls_as_none, from_micros, micros_of
from desk_pipeline.adapters.warehouse.daily_book_position import _lock_current_eods, _one_eod
from desk_pipeline.adapters.warehouse.engine import Store
from desk_pipeline.domain.collateral.ranking import in_ranking_order
from desk_pipeline.domain.schema import (
    POSITION_DTYPES,
    RANKING_DTYPES,
    VALUATION_DTYPES,
    conform,
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
