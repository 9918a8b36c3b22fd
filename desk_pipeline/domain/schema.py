"""Column names and dtypes of every frame the domain exchanges with the outside world."""

from collections.abc import Iterable, Mapping

import pandas as pd

from desk_pipeline.domain.errors import MissingColumnsError

# Trade statuses of the landing contract; the latest version of a trade_id decides.
NEW, AMEND, CANCEL = "NEW", "AMEND", "CANCEL"
STATUSES = (NEW, AMEND, CANCEL)

# Timestamps cross the domain boundary as UTC; business days are cut in DESK_TIMEZONE by callers.
TIMESTAMP = "datetime64[ns, UTC]"

# book_id and instrument_id may also come as categoricals (KEYED_TRADE_DTYPES): every consumer of
# a trades frame takes either, with the same results.
TRADE_DTYPES: Mapping[str, str] = {
    "trade_id": "object",
    "version": "int64",
    "status": "object",
    "book_id": "object",
    "instrument_id": "object",
    "quantity": "float64",  # signed: + buy/receive, - sell/deliver; nominal, may be fractional
    "price": "float64",  # per unit of quantity, in the instrument's currency
    "trade_time": TIMESTAMP,
}
TRADE_COLUMNS = tuple(TRADE_DTYPES)
# The trades the warehouse reads for the position engine: ids as categoricals of its id
# dictionary (codes from stored integer keys, categories every id it keeps), so no
# id string is hashed or made per trade. Sources and trade_versions give ids as objects.
KEYED_TRADE_DTYPES: Mapping[str, str] = {
    **TRADE_DTYPES,
    "book_id": "category",
    "instrument_id": "category",
}

POSITION_DTYPES: Mapping[str, str] = {
    "book_id": "object",
    "instrument_id": "object",
    "quantity": "float64",
    "avg_price": "float64",  # average cost of the open quantity; 0 when flat
    "realized_pnl": "float64",  # cumulative since the first trade, instrument currency
}
POSITION_COLUMNS = tuple(POSITION_DTYPES)
# A position as the engine rolls it and the warehouse stores it as a checkpoint (EOD and
# intraday snapshots): POSITION_DTYPES plus the quantity in micro-units, exact, which the engine
# rolls from. The float ``quantity`` (the nearest to it) is for readers: it cannot tell
# micro-units apart above precision.MAX_FLOAT_EXACT_QUANTITY.
POSITION_STATE_DTYPES: Mapping[str, str] = {**POSITION_DTYPES, "quantity_micro_units": "int64"}
POSITION_STATE_COLUMNS = tuple(POSITION_STATE_DTYPES)

QUARANTINE_DTYPES: Mapping[str, str] = {
    "source": "object",  # where the row came from, e.g. landing:trades_0301.csv
    "row_number": "int64",  # 1-based data row in that source; 0 for a whole-file rejection
    "trade_id": "object",
    "reason_code": "object",
    "reason": "object",
    "raw": "object",  # the row as received, JSON
}


def require_columns(frame: pd.DataFrame, columns: Iterable[str], *, where: str) -> None:
    """Raise MissingColumnsError naming the caller when ``frame`` lacks any of ``columns``."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MissingColumnsError(f"{where}: missing columns {missing}; got {list(frame.columns)}")


def empty_frame(dtypes: Mapping[str, str]) -> pd.DataFrame:
    """An empty frame with the given columns and dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})


def conform(frame: pd.DataFrame, dtypes: Mapping[str, str]) -> pd.DataFrame:
    """Select and order ``dtypes``' columns and cast them; a new frame, the input untouched."""
    return frame.loc[:, list(dtypes)].astype(dict(dtypes)).reset_index(drop=True)


# Reference data and marks (a landing folder's instruments, prices, books and fx_rates files).
ASSET_CLASSES = (
    "cash",
    "government_bond",
    "agency_bond",
    "corporate_bond",
    "covered_bond",
    "securitisation",
    "equity_main_index",
    "equity_other",
    "gold",
    "fund",
)
ISSUER_TYPES = ("sovereign", "other", "securitisation")

INSTRUMENT_DTYPES: Mapping[str, str] = {
    "instrument_id": "object",
    "name": "object",
    "asset_class": "object",  # one of ASSET_CLASSES
    "issuer_type": "object",  # one of ISSUER_TYPES
    "issuer": "object",
    "rating": "object",  # S&P-style long-term rating (AAA … D); None when unrated
    "maturity_date": "datetime64[ns]",  # NaT for perpetual instruments and equities
    "currency": "object",  # ISO 4217
}

PRICE_DTYPES: Mapping[str, str] = {
    "instrument_id": "object",
    "price_date": "datetime64[ns]",  # the business date of the mark
    "price": "float64",  # value per unit of quantity, in the instrument's currency
}
PRICE_COLUMNS = tuple(PRICE_DTYPES)

BOOK_DTYPES: Mapping[str, str] = {
    "book_id": "object",
    "base_currency": "object",
    "holding_period_days": "int64",  # repo-style default 5 (CRE22.56-22.59 minimum holding periods)
}
BOOK_COLUMNS = tuple(BOOK_DTYPES)

FX_DTYPES: Mapping[str, str] = {
    "currency": "object",
    "rate_date": "datetime64[ns]",
    "usd_per_unit": "float64",  # value of one unit of `currency` in USD
}
FX_COLUMNS = tuple(FX_DTYPES)

RANKING_DTYPES: Mapping[str, str] = {
    "book_id": "object",
    "instrument_id": "object",
    "rank": "Int64",  # 1 = highest lendable value; <NA> for ineligible items
    "quantity": "float64",
    "price": "float64",  # instrument currency; NaN when no mark exists
    "fx_rate": "float64",  # book base currency per unit of instrument currency
    "haircut": "float64",  # fraction, 0.05 = 5 %
    "value": "float64",  # quantity x price x fx_rate x (1 - haircut), book base currency
    "eligible": "bool",
    "reason": "object",  # why an item is ineligible (None when eligible); stale-price warnings
}
RANKING_COLUMNS = tuple(RANKING_DTYPES)

# One EOD position row valued at the day's marks (see domain/positions/valuation.py).
VALUATION_DTYPES: Mapping[str, str] = {
    "book_id": "object",
    "business_date": "object",  # YYYY-MM-DD
    "snapshot_id": "object",  # the EOD snapshot the row values
    "instrument_id": "object",
    "quantity": "float64",
    "avg_price": "float64",
    "price": "float64",  # the mark, instrument currency; NaN when none on or before the day
    "price_date": "datetime64[ns]",  # NaT when no mark
    "stale_price": "bool",  # the mark is older than marks.STALE_PRICE_DAYS
    "currency": "object",  # the instrument's; None when the instrument is unknown
    "base_currency": "object",  # the book's (the instrument's own when the book is unknown)
    "fx_rate": "float64",  # base currency per unit of instrument currency
    "market_value": "float64",  # quantity x price, instrument currency
    "market_value_base": "float64",  # market_value x fx_rate, base currency
    "unrealized_pnl": "float64",  # (price - avg_price) x quantity, instrument currency
    "unrealized_pnl_base": "float64",  # unrealized_pnl x fx_rate, base currency
    "reason": "object",  # why a value is missing, and stale-mark warnings; None when clean
}
VALUATION_COLUMNS = tuple(VALUATION_DTYPES)
