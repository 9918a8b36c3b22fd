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
    states = {
        product: _states(
            eods[f"{product}_current"].to_numpy(dtype=bool),
            eods[f"{product}_older"].to_numpy(dtype=bool),
            _due(eods, product),
        )
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


def stored_states(eods: pd.DataFrame, product: str) -> pd.DataFrame:
    """The state of one product of each stored EOD, from the snapshot its stored rows are of.

    What a read that shows the product (``desk ranking``) knows: the snapshot of the book-day's
    stored rows, beside the EOD's own. Judged by :func:`derivation_states`' rule: rows of the
    EOD's snapshot are CURRENT, rows of another snapshot OLDER, none MISSING or NOT_NEEDED.

    Args:
        eods: one row per stored EOD header: ``snapshot_id`` (the EOD's), ``<product>_snapshot_id``
            (the snapshot the book-day's stored rows of ``product`` were computed from; null
            when none are stored) and what makes the product due: ``has_rows`` (bool) for the
            valuation, ``position_count`` (int) for the ranking. Not modified.
        product: one of DERIVED.

    Returns:
        ``state`` (CURRENT, OLDER, MISSING or NOT_NEEDED) and ``current`` (bool: the stored
        product, if any, is the one of the EOD's snapshot: CURRENT or NOT_NEEDED), aligned with
        ``eods``' index.

    Raises:
        ValueError: ``product`` is not one of DERIVED.
        MissingColumnsError: ``eods`` lacks one of the columns above.
    """
    if product not in DERIVED:
        raise ValueError(f"stored_states: product {product!r} is not one of {DERIVED}")
    derived = f"{product}_snapshot_id"
    require_columns(eods, ["snapshot_id", derived, _DUE_COLUMN[product]], where="stored_states")
    stored = eods[derived].notna().to_numpy(dtype=bool)
    current = stored & (eods[derived] == eods["snapshot_id"]).to_numpy(dtype=bool)
    states = _states(current, stored & ~current, _due(eods, product))
    return pd.DataFrame(
        {"state": states, "current": np.isin(states, COMPLETE_STATES)}, index=eods.index
    )


# What makes each product due: a valuation values every position row, flat ones included (they
# carry realised P&L); a ranking ranks held instruments only.
_DUE_COLUMN = {"valuation": "has_rows", "ranking": "position_count"}


def _due(eods: pd.DataFrame, product: str) -> np.ndarray:
    """Whether each EOD has something to derive ``product`` from (bool array)."""
    if product == "valuation":
        return eods["has_rows"].to_numpy(dtype=bool)
    return eods["position_count"].to_numpy(dtype=np.int64) > 0


def _states(current: np.ndarray, older: np.ndarray, due: np.ndarray) -> np.ndarray:
    """The one rule: CURRENT, else OLDER, else MISSING when due, else NOT_NEEDED (object array)."""
    return np.select([current, older, due], [CURRENT, OLDER, MISSING], NOT_NEEDED).astype(object)


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
