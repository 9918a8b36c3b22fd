"""Complete stored EODs: whether each one's valuation and ranking were computed from it.

An EOD (one book, one business day, one snapshot) is the source of two products: its
*valuation* (every position row valued at the day's marks, flat rows included) and its
*collateral ranking* (every held instrument, flat rows excluded). Both are stored keyed by the
snapshot they were computed from. A run stopped between storing an EOD and deriving them
(Ctrl-C, SIGTERM, a killed worker) leaves the product missing, or leaves the one computed from
the snapshot the EOD replaced (keep-last only ever replaces a snapshot by a later one, so any
other snapshot is older). Readers of that day would act on a missing or out-of-date ranking;
a backfill of the day derives both again from the stored EOD.
"""

import numpy as np
import pandas as pd

from desk_pipeline.domain.schema import require_columns

# The products derived from an EOD, as the columns of EOD_DERIVATION_COLUMNS name them.
DERIVED = ("valuation", "ranking")
# What is stored of a product for an EOD: rows computed from its snapshot; rows of its
# book-day computed from an older snapshot only; none, though the EOD has rows to derive it
# from; none, and none are due (an EOD holding nothing ranks nothing, one without rows values
# nothing).
CURRENT, OLDER, MISSING, NOT_NEEDED = "current", "older_snapshot", "missing", "not_needed"
COMPLETE_STATES = (CURRENT, NOT_NEEDED)

EOD_DERIVATION_COLUMNS = (
    "book_id",
    "business_date",
    "position_count",
    "has_rows",
    *(f"{product}_{kind}" for product in DERIVED for kind in ("current", "older")),
)


def derivation_states(eods: pd.DataFrame) -> pd.DataFrame:
    """The state of each stored EOD's valuation and ranking, and whether the EOD is complete.

    A product is CURRENT when rows computed from the EOD's snapshot are stored; else OLDER when
    rows of its book-day computed from another snapshot are stored; else MISSING when the EOD
    has something to derive it from (a valuation: any position row, flat ones included; a
    ranking: an open position, ``position_count > 0``); else NOT_NEEDED. An EOD is complete
    when both products are CURRENT or NOT_NEEDED.

    Args:
        eods: one row per stored EOD header, EOD_DERIVATION_COLUMNS: ``position_count``
            (int, open positions), ``has_rows`` (bool, any position row) and per product of
            DERIVED ``<product>_current`` and ``<product>_older`` (bool, as above). Not modified.

    Returns:
        ``book_id``, ``business_date``, ``valuation``, ``ranking`` (one of CURRENT, OLDER,
        MISSING, NOT_NEEDED) and ``complete`` (bool), aligned with ``eods``' index.
    """
    require_columns(eods, EOD_DERIVATION_COLUMNS, where="derivation_states")
    due = {
        "valuation": eods["has_rows"].to_numpy(dtype=bool),
        "ranking": eods["position_count"].to_numpy(dtype=np.int64) > 0,
    }
    states = {
        product: np.select(
            [
                eods[f"{product}_current"].to_numpy(dtype=bool),
                eods[f"{product}_older"].to_numpy(dtype=bool),
                due[product],
            ],
            [CURRENT, OLDER, MISSING],
            NOT_NEEDED,
        ).astype(object)
        for product in DERIVED
    }
    complete = np.logical_and.reduce(
        [np.isin(states[product], COMPLETE_STATES) for product in DERIVED]
    )
    return pd.DataFrame(
        {
            "book_id": eods["book_id"].to_numpy(dtype=object),
            "business_date": eods["business_date"].to_numpy(dtype=object),
            **states,
            "complete": complete,
        },
        index=eods.index,
    )


def incomplete_eods(eods: pd.DataFrame) -> pd.DataFrame:
    """The stored EODs that are not complete (:func:`derivation_states`), by day then book.

    Args:
        eods: as for :func:`derivation_states`; other columns (``as_of_us``...) are carried.

    Returns:
        ``eods``' rows that are not complete with their ``valuation`` and ``ranking`` states,
        ordered by ``business_date`` then ``book_id``, index reset.
    """
    states = derivation_states(eods)
    behind = ~states["complete"]
    rows = eods.loc[behind].assign(**{p: states.loc[behind, p] for p in DERIVED})
    return rows.sort_values(["business_date", "book_id"], kind="stable").reset_index(drop=True)
