"""Marks (prices) and FX rates as of a business day, which the ranking and valuation both use."""

import numpy as np
import pandas as pd

from desk_pipeline.domain.schema import FX_COLUMNS, PRICE_COLUMNS, require_columns

# A mark older than this many calendar days still values a position but is flagged stale.
STALE_PRICE_DAYS = 5
# How far back a mark is looked for: an instrument without one in this window has no price
# (ineligible, not valued). The prices asset stores the same window, so that a day's ranking
# never depends on which partitions ran before.
PRICE_LOOKBACK = pd.Timedelta(days=31)


def marks_on(instrument_ids: pd.Series, days: pd.Series, prices: pd.DataFrame) -> pd.DataFrame:
    """The latest mark of each instrument dated on or before its row's day.

    Args:
        instrument_ids: one instrument id per row (None for none).
        days: the row's business day, dates without time zone (same length as the ids).
        prices: ``schema.PRICE_DTYPES``; rows with a missing price are ignored.

    Returns:
        ``price`` (NaN when no mark on or before the day), ``price_date`` (NaT then) and
        ``price_age_days`` (calendar days from the mark to the day, <NA> then), aligned
        with the inputs' index.
    """
    require_columns(prices, PRICE_COLUMNS, where="marks_on prices")
    found = _as_of(instrument_ids, days, prices, "instrument_id", "price_date", "price")
    age = (found["day"] - found["price_date"]).dt.days.astype("Int64")
    return pd.DataFrame(
        {"price": found["price"], "price_date": found["price_date"], "price_age_days": age},
        index=instrument_ids.index,
    )


def fx_rates_on(
    currencies: pd.Series, base_currencies: pd.Series, days: pd.Series, fx_rates: pd.DataFrame
) -> np.ndarray:
    """Base currency per unit of each row's currency, from USD rates dated on or before its day.

    rate = usd_per_unit(currency) / usd_per_unit(base currency), each the latest rate on or
    before the row's day; exactly 1 when the two currencies are the same. USD is worth 1 USD
    when it has no rate of its own.

    Args:
        currencies: the instrument's currency per row (None when unknown: the rate is NaN).
        base_currencies: the book's base currency per row.
        days: the row's business day, dates without time zone.
        fx_rates: ``schema.FX_DTYPES``.

    Returns:
        float64 array aligned with the inputs; NaN where a rate is missing.
    """
    require_columns(fx_rates, FX_COLUMNS, where="fx_rates_on fx_rates")

    def usd_value(currency: pd.Series) -> np.ndarray:
        found = _as_of(currency, days, fx_rates, "currency", "rate_date", "usd_per_unit")
        rate = found["usd_per_unit"].to_numpy(dtype="float64")
        return np.where((currency.to_numpy(dtype=object) == "USD") & np.isnan(rate), 1.0, rate)

    same = (currencies.to_numpy(dtype=object) == base_currencies.to_numpy(dtype=object)) & (
        currencies.notna().to_numpy()
    )
    return np.where(same, 1.0, usd_value(currencies) / usd_value(base_currencies))


def _as_of(
    keys: pd.Series,
    days: pd.Series,
    table: pd.DataFrame,
    key: str,
    date_column: str,
    value_column: str,
) -> pd.DataFrame:
    """Per row, the latest non-missing ``value_column`` of its key dated on or before its day.

    One as-of join over every row and day at once. Returns the key, ``day``, ``date_column``
    and ``value_column`` (NaT / NaN when nothing matches), one row per input in input order.
    """
    left = pd.DataFrame(
        {
            key: pd.Series(keys.to_numpy(dtype=object), dtype=object),
            "day": _naive_dates(days),
            "_row": np.arange(len(keys)),
        }
    )
    dates = _naive_dates(table[date_column])
    right = pd.DataFrame(
        {
            key: pd.Series(table[key].to_numpy(dtype=object), dtype=object),
            date_column: dates,
            value_column: table[value_column].to_numpy(dtype="float64"),
        }
    )
    right = right.loc[right[value_column].notna() & right[key].notna() & right[date_column].notna()]
    right = right.sort_values([date_column, key], kind="stable")
    # A row with no key matches nothing; merge_asof needs non-null "by" values on the left.
    left_known = left.loc[left[key].notna()].sort_values(["day", "_row"], kind="stable")
    joined = pd.merge_asof(
        left_known,
        right,
        left_on="day",
        right_on=date_column,
        by=key,
        direction="backward",
        allow_exact_matches=True,
    )
    result = left.merge(
        joined[["_row", date_column, value_column]], on="_row", how="left", validate="one_to_one"
    )
    return result.sort_values("_row", kind="stable").reset_index(drop=True)


def _naive_dates(values: pd.Series) -> np.ndarray:
    """Dates as ``datetime64[ns]`` without time zone (dates carry no zone in the domain)."""
    dates = pd.to_datetime(pd.Series(values).reset_index(drop=True))
    if dates.dt.tz is not None:
        dates = dates.dt.tz_localize(None)
    return dates.astype("datetime64[ns]").to_numpy()
