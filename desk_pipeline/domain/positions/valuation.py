"""End-of-day valuation: each EOD position's market value and unrealised P&L at the day's marks."""

import numpy as np
import pandas as pd

from desk_pipeline.domain.marks import fx_rates_on, marks_on, stale_price_reason
from desk_pipeline.domain.precision import exact_quantities, for_output
from desk_pipeline.domain.reasons import join_reasons, text
from desk_pipeline.domain.schema import (
    BOOK_COLUMNS,
    VALUATION_DTYPES,
    conform,
    empty_frame,
    require_columns,
)

EOD_COLUMNS = ("book_id", "business_date", "snapshot_id", "instrument_id", "quantity", "avg_price")


def value_positions(
    eod: pd.DataFrame,
    instruments: pd.DataFrame,
    prices: pd.DataFrame,
    books: pd.DataFrame,
    fx_rates: pd.DataFrame,
) -> pd.DataFrame:
    """Value every stored EOD position row at the marks of its business day.

    Marks are the collateral ranking's (``domain.marks``): the latest price on or before the day,
    stale when older than ``STALE_PRICE_DAYS`` (``marks.stale``); FX from USD rates on or before
    the day. Values (``_values``): market_value = quantity x price and unrealized_pnl =
    (price - avg_price) x quantity in the instrument's currency, ``*_base`` the same times
    fx_rate in the book's base currency. A flat row (quantity 0, kept for its realised P&L) is
    worth exactly 0 with no unrealised P&L, mark or no mark; any other row without a mark keeps
    its place with NaN values and the reason.

    Args:
        eod: ``EOD_COLUMNS`` (business_date as YYYY-MM-DD), one row per (snapshot, instrument),
            several days at once allowed. Not modified.
        instruments: ``instrument_id`` and ``currency``; the last row of a repeated id wins.
        prices: ``schema.PRICE_DTYPES``, covering the days of ``eod``.
        books: ``schema.BOOK_DTYPES``. A book missing here is valued in each instrument's own
            currency (fx_rate 1), as the ranking does.
        fx_rates: ``schema.FX_DTYPES``, covering the days of ``eod``.

    Returns:
        ``schema.VALUATION_DTYPES``, one row per input row, ordered by business_date, book_id
        and instrument_id. ``reason`` is None for a clean row, otherwise ``"; "``-joined
        ``"<code>: <detail>"`` parts: ``unknown_instrument`` (no currency, so no base value),
        ``no_price``, ``no_fx_rate`` (each leaves its values NaN; never on a flat row), then the
        ``stale_price`` warning (values kept).
    """
    require_columns(eod, EOD_COLUMNS, where="value_positions")
    require_columns(instruments, ("instrument_id", "currency"), where="value_positions instruments")
    require_columns(books, BOOK_COLUMNS, where="value_positions books")
    if eod.empty:
        return empty_frame(VALUATION_DTYPES)
    rows = _position_rows(eod)
    known, currency, base_currency = _currencies(rows, instruments, books)
    days = pd.to_datetime(rows["business_date"])
    marks = marks_on(rows["instrument_id"], days, prices)
    flat = rows["quantity"].to_numpy(dtype="float64") == 0
    valued = rows.assign(
        price=marks["price"].to_numpy(dtype="float64"),
        price_date=marks["price_date"].to_numpy(),
        stale_price=marks["stale_price"].to_numpy(dtype=bool),
        currency=currency,
        base_currency=base_currency,
        fx_rate=fx_rates_on(currency, base_currency, days, fx_rates),
    )
    valued = valued.assign(**_values(valued, flat))
    reason = _valuation_reasons(valued.assign(price_age_days=marks["price_age_days"]), known, flat)
    return conform(valued.assign(reason=reason), VALUATION_DTYPES)


def _position_rows(eod: pd.DataFrame) -> pd.DataFrame:
    """``EOD_COLUMNS`` of ``eod`` in output order, index 0..n-1, quantities on the unit grid.

    Ordered by business_date, book_id and instrument_id (stable). ``quantity`` becomes float64
    on the micro-unit grid (``precision.exact_quantities``): a quantity carrying float dust (an
    older snapshot) is flat.
    """
    rows = eod.loc[:, list(EOD_COLUMNS)].sort_values(
        ["business_date", "book_id", "instrument_id"], kind="stable"
    )
    return rows.reset_index(drop=True).assign(quantity=lambda r: exact_quantities(r["quantity"]))


def _currencies(
    rows: pd.DataFrame, instruments: pd.DataFrame, books: pd.DataFrame
) -> tuple[np.ndarray, pd.Series, pd.Series]:
    """Per row: whether the instrument is known, its currency and the book's base currency.

    The last row of a repeated instrument or book id wins. ``currency`` (object) is None for an
    unknown instrument; ``base_currency`` (object) falls back to the instrument's currency when
    the book is unknown, so such a row is valued in its own currency (fx_rate 1), as the ranking
    does. Both series are aligned with ``rows``; ``known`` is a bool array.
    """
    master = instruments.drop_duplicates("instrument_id", keep="last").set_index("instrument_id")
    known = rows["instrument_id"].isin(master.index).to_numpy()
    currency = _missing_as_none(rows["instrument_id"].map(master["currency"]))
    book_terms = books.drop_duplicates("book_id", keep="last").set_index("book_id")
    base_currency = _missing_as_none(rows["book_id"].map(book_terms["base_currency"]))
    return known, currency, base_currency.where(base_currency.notna(), currency)


def _values(valued: pd.DataFrame, flat: np.ndarray) -> dict[str, np.ndarray]:
    """The four value columns (float64) from ``quantity``, ``avg_price``, ``price``, ``fx_rate``.

    - market_value = quantity x price, instrument currency (negative for a short);
    - unrealized_pnl = (price - avg_price) x quantity, instrument currency: a long gains when
      the price rises above its average cost, a short when it falls below;
    - ``*_base`` = the same times fx_rate, in the book's base currency.

    A ``flat`` row (quantity 0) is worth exactly 0 with no unrealised P&L, mark or no mark; a
    missing price or rate leaves NaN.
    """
    quantity = valued["quantity"].to_numpy(dtype="float64")
    price = valued["price"].to_numpy()
    fx_rate = valued["fx_rate"].to_numpy()
    market_value = np.where(flat, 0.0, quantity * price)
    unrealized_pnl = np.where(flat, 0.0, (price - valued["avg_price"].to_numpy()) * quantity)
    return {
        "market_value": market_value,
        "market_value_base": np.where(flat, 0.0, market_value * fx_rate),
        "unrealized_pnl": unrealized_pnl,
        "unrealized_pnl_base": np.where(flat, 0.0, unrealized_pnl * fx_rate),
    }


def _valuation_reasons(valued: pd.DataFrame, known: np.ndarray, flat: np.ndarray) -> pd.Series:
    """Per row, the ``"; "``-joined reasons of ``value_positions``; None for a clean row.

    ``valued`` holds the row's ``instrument_id``, ``business_date``, ``price``, ``price_date``,
    ``price_age_days``, ``stale_price``, ``currency``, ``base_currency`` and ``fx_rate``;
    ``known`` and ``flat`` are bool arrays aligned with it. No reason but ``stale_price``
    applies to a flat row. Returns an object series aligned with ``valued``.
    """
    unpriced = np.isnan(valued["price"].to_numpy()) & ~flat
    no_rate = known & np.isnan(valued["fx_rate"].to_numpy()) & ~flat
    reason = join_reasons(
        valued,
        [
            (
                ~known & ~flat,
                lambda r: "unknown_instrument: " + text(r["instrument_id"])
                + " is not in the instrument reference data",
            ),
            (
                unpriced,
                lambda r: "no_price: no price for " + text(r["instrument_id"]) + " on or before "
                + text(r["business_date"]),
            ),
            (
                no_rate,
                lambda r: "no_fx_rate: no " + text(r["currency"]) + "/" + text(r["base_currency"])
                + " rate on or before " + text(r["business_date"]),
            ),
            (
                valued["stale_price"].to_numpy(dtype=bool),
                lambda r: stale_price_reason(r, r["business_date"]),
            ),
        ],
    )  # fmt: skip
    return pd.Series(reason, dtype=object).replace("", None)


def _missing_as_none(values: pd.Series) -> pd.Series:
    """Text as Python objects, missing values as None (a lookup's misses come back as NaN)."""
    return values.astype(object).where(values.notna(), None)


def valuation_summary(valuation: pd.DataFrame) -> dict[str, float | int]:
    """The desk's figures for the last business day of a valuation, for plotting over days.

    Args:
        valuation: ``value_positions`` output (one or more days).

    Returns:
        ``positions_without_mark`` (held, i.e. non-flat, rows with no price),
        ``stale_marks`` (rows valued at a stale mark), and per base currency ``CCY``
        ``market_value_CCY`` and ``unrealized_pnl_CCY``: sums of the ``*_base`` columns over
        the rows whose base value is known, rounded for reading (``precision.for_output``).
        Books in different base currencies are never added together. Empty input gives zero
        counts and no currency totals.
    """
    require_columns(valuation, VALUATION_DTYPES, where="valuation_summary")
    last = valuation.loc[valuation["business_date"] == valuation["business_date"].max()]
    held = last["quantity"] != 0
    summary: dict[str, float | int] = {
        "positions_without_mark": int((held & last["price"].isna()).sum()),
        "stale_marks": int(last["stale_price"].sum()),
    }
    totals = last.groupby("base_currency", sort=True)[["market_value_base", "unrealized_pnl_base"]]
    for ccy, total in totals.sum().iterrows():
        summary[f"market_value_{ccy}"] = for_output(total["market_value_base"])
        summary[f"unrealized_pnl_{ccy}"] = for_output(total["unrealized_pnl_base"])
    return summary
