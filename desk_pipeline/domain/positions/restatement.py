"""Restatement: which stored snapshots late trades made stale, and which days to recompute.

A late, amended or cancelled trade leaves a *late change*: (book_id, from_time_us, arrived_at_us),
the earliest trade time it changes and when it arrived (the warehouse's ``late_changes`` table).
A snapshot that includes that time (``as_of > from_time``) and was computed before the change
arrived (``computed_at < arrived_at``) is *stale*: it no longer equals a recomputation from every
trade.
Times are integer microseconds since the epoch, UTC, as the warehouse stores them.
"""

import numpy as np
import pandas as pd

HEADER_COLUMNS = ("book_id", "business_date", "as_of_us", "computed_at_us")
LATE_CHANGE_COLUMNS = ("book_id", "from_time_us", "arrived_at_us")


def stale_snapshots(
    headers: pd.DataFrame, late_changes: pd.DataFrame, *, any_book: bool = False
) -> pd.Series:
    """Which snapshots a later late change covers.

    Args:
        headers: one row per snapshot with ``as_of_us``, ``computed_at_us`` and ``book_id``.
        late_changes: LATE_CHANGE_COLUMNS.
        any_book: a late change of any book covers the snapshot (intraday windows hold every book).

    Returns:
        Boolean Series aligned with ``headers``.
    """
    if headers.empty or late_changes.empty:
        return pd.Series(False, index=headers.index, dtype=bool)
    left = headers[["as_of_us", "computed_at_us"]].assign(
        _row=np.arange(len(headers)), book_id=headers["book_id"]
    )
    if any_book:
        pairs = left.drop(columns="book_id").merge(
            late_changes[list(LATE_CHANGE_COLUMNS)], how="cross"
        )
    else:
        pairs = left.merge(late_changes[list(LATE_CHANGE_COLUMNS)], on="book_id")
    hit = pairs[
        (pairs["from_time_us"] < pairs["as_of_us"])
        & (pairs["arrived_at_us"] > pairs["computed_at_us"])
    ]["_row"].unique()
    flags = np.zeros(len(headers), dtype=bool)
    flags[hit] = True
    return pd.Series(flags, index=headers.index)


def stale_days(headers: pd.DataFrame, late_changes: pd.DataFrame) -> list[str]:
    """Stored business days whose EOD a recomputation from every trade would change.

    A day is stale when a late change of some book starts before the day's ``as_of`` and arrived
    after that book's EOD of the day was computed; a book without an EOD that day (its first trade
    arrived late, or its positions vanished) is compared with the day's latest computation.

    Args:
        headers: stored EOD headers, HEADER_COLUMNS (one row per book and day).
        late_changes: LATE_CHANGE_COLUMNS.

    Returns:
        YYYY-MM-DD days, ascending.
    """
    if headers.empty or late_changes.empty:
        return []
    days = headers.groupby("business_date", as_index=False).agg(
        day_as_of_us=("as_of_us", "max"), day_computed_at_us=("computed_at_us", "max")
    )
    pairs = late_changes[list(LATE_CHANGE_COLUMNS)].merge(days, how="cross")
    pairs = pairs[pairs["from_time_us"] < pairs["day_as_of_us"]]
    pairs = pairs.merge(
        headers[["book_id", "business_date", "computed_at_us"]],
        on=["book_id", "business_date"],
        how="left",
    )
    computed = pairs["computed_at_us"].fillna(pairs["day_computed_at_us"])
    stale = pairs.loc[pairs["arrived_at_us"] > computed, "business_date"]
    return sorted(stale.unique())


def restatement_days(headers: pd.DataFrame, late_changes: pd.DataFrame) -> list[str]:
    """Every stored day from the earliest stale day to the latest stored day, ascending.

    A late trade changes every later position of its book, so the days after the first stale
    one are recomputed with it (days a recomputation finds unchanged are confirmed, not
    rewritten). Empty when nothing is stale.
    """
    stale = stale_days(headers, late_changes)
    if not stale:
        return []
    stored = pd.Series(headers["business_date"].unique())
    return sorted(stored[stored >= stale[0]])
