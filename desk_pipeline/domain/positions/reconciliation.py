"""Reconciliation predicates: stored EODs and ingestion counts against their inputs."""

import numpy as np
import pandas as pd

from desk_pipeline.domain.positions.engine import roll_positions
from desk_pipeline.domain.schema import (
    POSITION_STATE_COLUMNS,
    POSITION_STATE_DTYPES,
    TRADE_COLUMNS,
    empty_frame,
    require_columns,
)

EOD_KEYS = ["book_id", "business_date", "instrument_id"]
VALUES = ["quantity_micro_units", "avg_price", "realized_pnl"]
# Quantities are exact decimals and must agree to the micro-unit: compared as the stored
# integers, which the float quantity cannot always tell apart. Money is float: identical
# arithmetic gives identical bits, but a restart from a stored checkpoint may round differently
# in the last place.
MONEY = ["avg_price", "realized_pnl"]
RTOL = 1e-9
ATOL = 1e-6


def recompute_eods(
    trades: pd.DataFrame, headers: pd.DataFrame, opening: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Each stored EOD recomputed: ``opening`` plus every effective trade before its ``as_of``.

    Args:
        trades: TRADE_COLUMNS, effective trades (latest versions, cancels removed) from the
            first trade on, or from the time ``opening`` was taken.
        headers: ``book_id``, ``business_date`` and ``as_of`` (UTC) of the EODs to recompute.
        opening: POSITION_STATE_COLUMNS, a stored checkpoint to roll from; None recomputes
            from scratch.

    Returns:
        ``business_date`` plus POSITION_STATE_COLUMNS: one row per (book, day, instrument) that
        the recomputation holds for the books in ``headers``, flat keys included.
    """
    require_columns(trades, TRADE_COLUMNS, where="recompute_eods(trades)")
    require_columns(headers, ["book_id", "business_date", "as_of"], where="recompute_eods")
    out = empty_frame({"business_date": "str", **POSITION_STATE_DTYPES})
    if headers.empty:
        return out
    ends = pd.DatetimeIndex(headers["as_of"].drop_duplicates()).sort_values()
    start = empty_frame(POSITION_STATE_DTYPES) if opening is None else opening
    rolled = roll_positions(start, trades, ends)
    merged = rolled.merge(headers[["book_id", "business_date", "as_of"]], on=["book_id", "as_of"])
    return merged[["business_date", *POSITION_STATE_COLUMNS]].reset_index(drop=True)


def eod_differences(stored: pd.DataFrame, recomputed: pd.DataFrame) -> pd.DataFrame:
    """Rows where stored EODs and their recomputation disagree.

    Args:
        stored: ``business_date`` plus POSITION_STATE_COLUMNS, the stored rows of the EODs
            checked.
        recomputed: the same columns, from :func:`recompute_eods` for the same EODs.

    Returns:
        EOD_KEYS plus ``<value>_stored`` / ``<value>_recomputed`` for each of VALUES, one row
        per key missing on one side, with different micro-units or with money differing beyond
        tolerance; empty when they reconcile.
    """
    columns = ["business_date", *POSITION_STATE_COLUMNS]
    require_columns(stored, columns, where="eod_differences")
    require_columns(recomputed, columns, where="eod_differences")
    both = stored[EOD_KEYS + VALUES].merge(
        recomputed[EOD_KEYS + VALUES],
        on=EOD_KEYS,
        how="outer",
        suffixes=("_stored", "_recomputed"),
        indicator=True,
    )
    differs = both["_merge"] != "both"
    differs |= both["quantity_micro_units_stored"] != both["quantity_micro_units_recomputed"]
    for value in MONEY:
        a = both[f"{value}_stored"].to_numpy(dtype=float)
        b = both[f"{value}_recomputed"].to_numpy(dtype=float)
        differs |= ~np.isclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=False)
    result = both[differs.to_numpy()].drop(columns="_merge")
    return result.sort_values(EOD_KEYS, kind="stable").reset_index(drop=True)


def duplicate_eods(rows: pd.DataFrame) -> pd.DataFrame:
    """(book, business_date) pairs whose stored rows belong to more than one snapshot.

    Args:
        rows: ``book_id``, ``business_date``, ``snapshot_id`` of every stored EOD position row
            and header (a pair must resolve to exactly one snapshot).

    Returns:
        ``book_id``, ``business_date``, ``snapshots`` (count), one row per offending pair.
    """
    require_columns(rows, ["book_id", "business_date", "snapshot_id"], where="duplicate_eods")
    counts = (
        rows.groupby(["book_id", "business_date"], sort=True)["snapshot_id"]
        .nunique()
        .rename("snapshots")
        .reset_index()
    )
    return counts[counts["snapshots"] > 1].reset_index(drop=True)


def quarantine_rate(batches: pd.DataFrame) -> float:
    """Quarantined rows over received rows across ingested batches; 0 when nothing was received.

    Args:
        batches: ``received`` and ``quarantined`` per batch.
    """
    require_columns(batches, ["received", "quarantined"], where="quarantine_rate")
    received = int(batches["received"].sum())
    return float(batches["quarantined"].sum()) / received if received else 0.0


def unreconciled_batches(batches: pd.DataFrame) -> pd.DataFrame:
    """Batches where accepted + quarantined != received: rows lost or invented on ingestion.

    Args:
        batches: ``source``, ``received``, ``accepted`` and ``quarantined`` per batch.
    """
    require_columns(
        batches, ["source", "received", "accepted", "quarantined"], where="unreconciled_batches"
    )
    off = batches["accepted"] + batches["quarantined"] != batches["received"]
    return batches[off].reset_index(drop=True)
