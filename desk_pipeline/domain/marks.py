"""Marks (prices) and FX rates as of a business day, which the ranking and valuation both use."""

import numpy as np
import pandas as pd

from desk_pipeline.domain.reasons import number_text, text
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
        ``price`` (NaN when no mark on or before the day), ``price_date`` (NaT then),
        ``price_age_days`` (calendar days from the mark to the day, <NA> then) and
        ``stale_price`` (:func:`stale`), aligned with the inputs' index.
    """
    require_columns(prices, PRICE_COLUMNS, where="marks_on prices")
    found = _as_of(instrument_ids, days, prices, "instrument_id", "price_date", "price")
    age = (found["day"] - found["price_date"]).dt.days.astype("Int64")
    return pd.DataFrame(
        {
            "price": found["price"].to_numpy(),
            "price_date": found["price_date"].to_numpy(),
            "price_age_days": age.array,
            "stale_price": stale(age),
        },
        index=instrument_ids.index,
    )


def stale(price_age_days: pd.Series) -> np.ndarray:
    """Whether each mark is stale: older than ``STALE_PRICE_DAYS`` calendar days.

    A stale mark still values a position and keeps collateral eligible; the valuation and the
    ranking both flag it (``stale_price``). The desk's rule, kept here once for both.

    Args:
        price_age_days: calendar days from the mark to the day (Int64, <NA> when unmarked).

    Returns:
        bool array aligned with the input; False where there is no mark.
    """
    return (price_age_days > STALE_PRICE_DAYS).fillna(False).to_numpy(dtype=bool)


def stale_price_reason(rows: pd.DataFrame, day: pd.Series) -> pd.Series:
    """``stale_price: last price on <price_date>, <n> days before <day>`` for each row.

    Args:
        rows: ``price_date`` (datetime64) and ``price_age_days`` (int) of marks_on's frame.
        day: each row's business day, as the reason quotes it.
    """
    return (
        "stale_price: last price on " + text(rows["price_date"].dt.strftime("%Y-%m-%d")) + ", "
        + number_text(rows["price_age_days"], 0) + " days before " + text(day)
    )  # fmt: skip


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

    At most PRICE_LOOKBACK before the day: a day's marks never depend on the range it is
    computed with (a range reads from PRICE_LOOKBACK before its first day).

    One as-of join over the distinct (key, day) pairs of every row and day at once, spread back
    over the rows: a range's holdings repeat each instrument once per book and day, and each
    currency once per instrument. Returns the key, ``day``, ``date_column`` and
    ``value_column`` (NaT / NaN when nothing matches), one row per input in input order,
    index 0..n-1.
    """
    key_values = keys.to_numpy(dtype=object)
    day = _naive_dates(days)
    # A row with no key matches nothing (code -1); merge_asof needs non-null "by" values.
    key_code, key_uniques = pd.factorize(pd.Series(key_values, dtype=object))
    day_code, day_uniques = pd.factorize(day.view("int64"))
    known = key_code >= 0
    pair_of_row = key_code.astype("int64") * len(day_uniques) + day_code
    distinct, pair = np.unique(pair_of_row[known], return_inverse=True)
    pairs = pd.DataFrame(
        {
            key: pd.Series(
                np.asarray(key_uniques, dtype=object)[distinct // len(day_uniques)], dtype=object
            ),
            "day": np.asarray(day_uniques)[distinct % len(day_uniques)].view("datetime64[ns]"),
            "_pair": np.arange(len(distinct)),
        }
    ).sort_values(["day", key], kind="stable")
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
    joined = pd.merge_asof(
        pairs,
        right,
        left_on="day",
        right_on=date_column,
        by=key,
        direction="backward",
        allow_exact_matches=True,
        # A day reads no mark older than the lookback, however long the range read with it.
        tolerance=PRICE_LOOKBACK,
    )
    found_date = np.full(len(distinct), np.datetime64("NaT"), dtype="datetime64[ns]")
    found_value = np.full(len(distinct), np.nan)
    found_date[joined["_pair"].to_numpy()] = joined[date_column].to_numpy(dtype="datetime64[ns]")
    found_value[joined["_pair"].to_numpy()] = joined[value_column].to_numpy(dtype="float64")
    row_date = np.full(len(key_values), np.datetime64("NaT"), dtype="datetime64[ns]")
    row_value = np.full(len(key_values), np.nan)
    row_date[known] = found_date[pair]
    row_value[known] = found_value[pair]
    return pd.DataFrame(
        {
            key: pd.Series(key_values, dtype=object),
            "day": day,
            date_column: row_date,
            value_column: row_value,
        }
    )


def _naive_dates(values: pd.Series) -> np.ndarray:
    """Dates as ``datetime64[ns]`` without time zone (dates carry no zone in the domain)."""
    dates = pd.to_datetime(pd.Series(values).reset_index(drop=True))
    if dates.dt.tz is not None:
        dates = dates.dt.tz_localize(None)
    return dates.astype("datetime64[ns]").to_numpy()


# The columns of a dated mark: an instrument's price or a currency's USD rate, keyed alike.
MARK_KEY_COLUMNS = ("key", "mark_date")


def days_using_marks(changed: pd.DataFrame, marks: pd.DataFrame, days: pd.Series) -> list[str]:
    """The days whose valuation and ranking read one of the ``changed`` marks.

    A day reads, per key (instrument or currency), the latest mark dated on or before it and at
    most PRICE_LOOKBACK older (``marks_on``, ``fx_rates_on``). A mark dated ``p`` is therefore
    read by the days from ``p`` up to, not including, the key's next mark date, and no later than
    ``p + PRICE_LOOKBACK``. When a stored mark changes, or a new one fills a day, those days'
    stored valuations and rankings were computed from another value and are stale.

    Args:
        changed: MARK_KEY_COLUMNS, the marks that changed or are new (``mark_date`` datetime64).
        marks: MARK_KEY_COLUMNS, every stored mark of the changed keys (the changed included).
        days: the days to look at, YYYY-MM-DD (e.g. every day with a stored EOD).

    Returns:
        The affected days among ``days``, YYYY-MM-DD, ascending, each once.
    """
    require_columns(changed, MARK_KEY_COLUMNS, where="days_using_marks changed")
    require_columns(marks, MARK_KEY_COLUMNS, where="days_using_marks marks")
    stored = np.unique(pd.to_datetime(pd.Series(days, dtype=object)).to_numpy("datetime64[ns]"))
    if changed.empty or not len(stored):
        return []
    dated = pd.concat([marks[list(MARK_KEY_COLUMNS)], changed[list(MARK_KEY_COLUMNS)]])
    dated = dated.assign(mark_date=_naive_dates(dated["mark_date"])).drop_duplicates()
    dated = dated.sort_values(["key", "mark_date"], kind="stable")
    dated["next_date"] = dated.groupby("key", sort=False)["mark_date"].shift(-1)
    hit = changed[["key"]].assign(mark_date=_naive_dates(changed["mark_date"]))
    hit = hit.merge(dated, on=["key", "mark_date"], how="left")
    last_reader = hit["mark_date"] + PRICE_LOOKBACK + pd.Timedelta(days=1)
    end = hit["next_date"].where(hit["next_date"] < last_reader, last_reader)
    first = np.searchsorted(stored, hit["mark_date"].to_numpy("datetime64[ns]"), side="left")
    stop = np.searchsorted(stored, end.to_numpy("datetime64[ns]"), side="left")
    # Each change covers stored[first:stop]; a difference array unions the ranges at once.
    cover = np.zeros(len(stored) + 1, dtype=np.int64)
    np.add.at(cover, first, 1)
    np.add.at(cover, stop, -1)
    read = np.cumsum(cover[:-1]) > 0
    return list(pd.DatetimeIndex(stored[read]).strftime("%Y-%m-%d"))
