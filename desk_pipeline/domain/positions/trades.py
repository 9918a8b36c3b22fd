"""Trades: validation of received rows, versions, and the effective trade set a snapshot uses."""

import numpy as np
import pandas as pd

from desk_pipeline.domain.precision import MAX_ABS_QUANTITY, MAX_PRICE, QUANTITY_DECIMALS, to_units
from desk_pipeline.domain.schema import (
    CANCEL,
    NEW,
    STATUSES,
    TRADE_COLUMNS,
    TRADE_DTYPES,
    require_columns,
)
from desk_pipeline.domain.validation.numbers import Number, Whole
from desk_pipeline.domain.validation.rules import Column, RuleSet, validate
from desk_pipeline.domain.validation.text import Choice, Id, one_of
from desk_pipeline.domain.validation.times import Instant

# A book id travels in every event: in the AMQP routing key "position_snapshot.created.<book>"
# (a short string: 255 bytes at most) and as the Kafka message key. Bounded in UTF-8 bytes, as
# 64 characters of emoji are 256 bytes: one such book stopped every relay pass.
MAX_BOOK_ID_BYTES = 128
# The book id rule, wherever a book id arrives (trades and books.csv).
BOOK_ID = Id(max_bytes=MAX_BOOK_ID_BYTES, why_bytes=" (event routing keys carry it)")
# Versions are stored as 32-bit integers; a larger one would fail the whole batch's insert.
MAX_VERSION = 2**31 - 1
# Trade times accepted: [EARLIEST_TRADE_TIME, LATEST_TRADE_TIME). Anything outside is a typo or a
# placeholder (0026 for 2026, 9999-12-31), not a trade.
EARLIEST_TRADE_TIME = pd.Timestamp("1970-01-01", tz="UTC")
LATEST_TRADE_TIME = pd.Timestamp("2100-01-01", tz="UTC")
# Comparing versions of the same (trade_id, version) must ignore float noise from text round trips.
CONTENT_COLUMNS = ("status", "book_id", "instrument_id", "quantity", "price", "trade_time")


def _conflicts(trades: pd.DataFrame) -> np.ndarray:
    _, conflicting = split_conflicting_duplicates(trades, reference=None)
    return trades.index.isin(conflicting.index)


# The landing contract's columns and their rules (see domain/validation/ for the shared ones).
TRADE_RULES = RuleSet(
    columns=(
        Column("trade_id", Id()),
        Column("book_id", BOOK_ID),
        Column("instrument_id", Id()),
        Column(
            "quantity",
            Number(max_abs=MAX_ABS_QUANTITY, decimals=QUANTITY_DECIMALS, nonzero=True),
        ),
        Column("price", Number(positive=True, at_most=MAX_PRICE)),
        Column("trade_time", Instant(EARLIEST_TRADE_TIME, LATEST_TRADE_TIME)),
        Column(
            "version",
            Whole(
                1,
                MAX_VERSION,
                1,
                "bad_version",
                f"version must be a positive integer up to {MAX_VERSION}",
            ),
            required=False,
        ),
        Column(
            "status",
            Choice(
                one_of(STATUSES),
                "unknown_status",
                f"status must be one of {list(STATUSES)}",
                case="upper",
                blank=NEW,
            ),
            required=False,
        ),
    ),
    dtypes=TRADE_DTYPES,
    key=("trade_id", "version"),
    # Exact repeats stay: they are accepted rows (stored once by the warehouse), so that
    # accepted + quarantined = received holds per file.
    keep_exact_repeats=True,
    conflicts=_conflicts,
)


def validate_trades(raw: pd.DataFrame, *, source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split received rows into valid trades and quarantine rows, losing none (TRADE_RULES).

    Args:
        raw: rows as received, every cell a string or missing (the landing CSV contract:
            trade_id, book_id, instrument_id, quantity, price, trade_time required; version and
            status optional; extra columns ignored), or typed values (an upstream table). The
            index is the 1-based row number.
        source: where the rows came from, recorded on every quarantine row.

    Returns:
        ``(trades, quarantine)``: trades with TRADE_DTYPES (trade_time UTC; a time without an
        offset is UTC), quarantine rows with QUARANTINE_DTYPES. ``len(trades) + len(quarantine)
        == len(raw)`` always.
    """
    return validate(raw, TRADE_RULES, source=source)


def split_conflicting_duplicates(
    trades: pd.DataFrame, reference: pd.DataFrame | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Separate rows that repeat a (trade_id, version) with different content.

    The first occurrence wins: earlier rows of ``trades`` and, when given, every row of
    ``reference`` (versions already stored). Exact repeats are dropped silently because re-sending
    the same trade is idempotent by contract.

    Returns:
        ``(kept, conflicting)``: both with the input's index, kept without exact repeats.
    """
    require_columns(trades, TRADE_COLUMNS, where="split_conflicting_duplicates")
    ref = trades.iloc[0:0] if reference is None else reference.loc[:, list(TRADE_COLUMNS)]
    key = ["trade_id", "version"]
    repeated = pd.concat([ref[key], trades[key]]).duplicated(keep="first").to_numpy()[len(ref) :]
    if not repeated.any():
        # Every row is the first of its (trade_id, version), so it is compared with itself only:
        # the concatenation and merge (most of this rule's cost on a day's batch) are skipped.
        same = _same_content(trades, trades)
        return trades[same], trades[~same]
    combined = pd.concat([ref.assign(_ref=True), trades.assign(_ref=False)])
    first = combined.drop_duplicates(key, keep="first")
    merged = combined.merge(first[[*key, *CONTENT_COLUMNS]], on=key, suffixes=("", "_first"))
    merged.index = combined.index
    firsts = merged[[f"{c}_first" for c in CONTENT_COLUMNS]].set_axis(CONTENT_COLUMNS, axis=1)
    same = _same_content(merged, firsts)[~combined["_ref"].to_numpy()]
    return trades[same & ~repeated], trades[~same]


def _same_content(left: pd.DataFrame, right: pd.DataFrame) -> np.ndarray:
    """Row by row, whether two equally long frames agree on every CONTENT_COLUMNS value.

    Missing values never agree (NaN, None and NaT are unequal to themselves).
    """
    same = np.ones(len(left), dtype=bool)
    for column in CONTENT_COLUMNS:
        a, b = left[column], right[column]
        if column == "quantity":
            # Exact to the micro-unit: a resend of 1e9 as 1e9 + 1e-6 is a conflict, not noise.
            same &= to_units(a) == to_units(b)
        elif column == "price":
            same &= np.isclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-12, atol=0)
        else:
            same &= (a == b).to_numpy()
    return same


def latest_versions(trades: pd.DataFrame) -> pd.DataFrame:
    """The highest version of each trade_id, cancels included (they decide that a trade is gone)."""
    require_columns(trades, TRADE_COLUMNS, where="latest_versions")
    last = _last_of_sorted_runs(trades)
    if last is not None:
        # Rows already in (trade_id, version) order, as a source's day or a read by key
        # delivers them: the stable sort would keep them where they are, so only the last row
        # of each trade_id is taken (sorting 100k string ids was most of this rule's cost).
        return trades.iloc[np.flatnonzero(last)].reset_index(drop=True)
    ordered = trades.sort_values(["trade_id", "version"], kind="stable")
    return ordered.drop_duplicates("trade_id", keep="last").reset_index(drop=True)


def _last_of_sorted_runs(trades: pd.DataFrame) -> np.ndarray | None:
    """Whether each row is the last of its trade_id, when rows are in (trade_id, version) order.

    Returns:
        None when they are not in that order, or when ids or versions are missing or not
        comparable: NaN compares false and None or pd.NA raise, so the sort decides those.
    """
    ids = trades["trade_id"].to_numpy()
    versions = trades["version"].to_numpy()
    if ids.dtype != object or not np.issubdtype(versions.dtype, np.integer):
        return None
    if len(ids) == 0:
        return np.zeros(0, dtype=bool)
    try:
        # Missing ids are not strings: comparisons with NaN are False, with None raise.
        same = np.asarray(ids[1:] == ids[:-1], dtype=bool)
        ordered = np.asarray(ids[1:] > ids[:-1], dtype=bool) | (
            same & (versions[1:] >= versions[:-1])
        )
    except TypeError:
        return None
    if not ordered.all():
        return None
    return np.append(~same, True)


def effective_trades(trades: pd.DataFrame) -> pd.DataFrame:
    """The trades a snapshot applies: latest version of each trade_id, cancels removed.

    Returns:
        TRADE_COLUMNS in application order: (trade_time, trade_id).
    """
    latest = latest_versions(trades)
    return order_trades(latest[latest["status"] != CANCEL])


def order_trades(trades: pd.DataFrame) -> pd.DataFrame:
    """Trades sorted in the order the engine applies them: (trade_time, trade_id)."""
    require_columns(trades, TRADE_COLUMNS, where="order_trades")
    order = application_order(trades)
    return (
        trades.reset_index(drop=True)
        if order is None
        else trades.iloc[order].reset_index(drop=True)
    )


def application_order(trades: pd.DataFrame) -> np.ndarray | None:
    """Row positions of ``trades`` in the order the engine applies them: (trade_time, trade_id).

    Returns:
        None when the rows are in that order already, as the warehouse and sources deliver them.
    """
    times = trades["trade_time"].to_numpy(dtype="datetime64[ns]").view("int64")
    # Equal timestamps are rare: sort on the integer times, and on trade_id only within runs of
    # equal times (sorting a million string ids would dominate the engine's time).
    if (times[1:] > times[:-1]).all():
        return None
    order = np.argsort(times, kind="stable")
    sorted_times = times[order]
    equal = sorted_times[1:] == sorted_times[:-1]
    if equal.any():
        tied = np.flatnonzero(np.concatenate([equal, [False]]) | np.concatenate([[False], equal]))
        ties = pd.DataFrame(
            {"time": sorted_times[tied], "trade_id": trades["trade_id"].to_numpy()[order[tied]]}
        )
        within = ties.sort_values(["time", "trade_id"], kind="stable").index.to_numpy()
        order[tied] = order[tied][within]
    return order
