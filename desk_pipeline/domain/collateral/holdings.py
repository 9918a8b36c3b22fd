"""The anti-corruption layer (ACL) from positions to collateral: EOD positions become holdings.

This is the one place the collateral context reads the positions context's model. The ranking
(``ranking.rank_collateral_days``, which the ``collateral_ranking`` asset runs) and the ranking's
coverage check (``defs/collateral/checks.py``) both translate stored end-of-day positions here,
and nowhere else; ``domain.positions`` never imports ``domain.collateral`` (import-linter keeps the
two contexts independent, see ``pyproject.toml``).
"""

import pandas as pd

from desk_pipeline.domain.precision import from_units, to_units
from desk_pipeline.domain.schema import require_columns

HOLDING_COLUMNS = ("business_date", "snapshot_id", "as_of", "book_id", "instrument_id", "quantity")


def holdings_from_positions(eod: pd.DataFrame) -> pd.DataFrame:
    """Translate stored end-of-day position rows into the collateral context's holdings.

    The anti-corruption layer between the positions and collateral contexts: collateral code reads
    positions only through this function, so a change to the position model stops here. Only the
    quantity held matters to collateral; average price and realised P&L stay behind.

    Args:
        eod: POSITION_DTYPES (at least ``book_id``, ``instrument_id``, ``quantity``) plus
            ``business_date``, ``snapshot_id`` and ``as_of``. Not modified.

    Returns:
        ``HOLDING_COLUMNS``: one row per (business_date, book_id, instrument_id) with a non-zero
        quantity (duplicates summed, keeping the first row's snapshot_id and as_of), ordered by
        business_date, book_id and instrument_id. Flat rows, which the position context keeps
        only for their realised P&L, are not holdings and are dropped.
    """
    require_columns(eod, HOLDING_COLUMNS, where="holdings_from_positions")
    keys = ["business_date", "book_id", "instrument_id"]
    holdings = (
        eod.loc[:, list(HOLDING_COLUMNS)]
        .assign(quantity=lambda f: to_units(f["quantity"]))  # exact sums, as decimals add
        .groupby(keys, sort=True, as_index=False)
        .agg(
            snapshot_id=("snapshot_id", "first"),
            as_of=("as_of", "first"),
            quantity=("quantity", "sum"),
        )
    )
    held = holdings.loc[holdings["quantity"] != 0, list(HOLDING_COLUMNS)]
    return held.assign(quantity=from_units(held["quantity"])).reset_index(drop=True)
