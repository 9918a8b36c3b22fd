"""Lendable value of each holding: its terms, marks, haircut and value in the book's base currency.

The steps :func:`ranking.rank_collateral` composes between netting the holdings and ranking them;
each is vectorised over one row per held (book, instrument).
"""

from typing import TypeVar

import numpy as np
import pandas as pd

from desk_pipeline.domain.collateral.eligibility import eligibility
from desk_pipeline.domain.collateral.haircuts import fx_addon, haircuts_on, scale_haircut
from desk_pipeline.domain.collateral.schedule import HaircutSchedule
from desk_pipeline.domain.marks import fx_rates_on, marks_on
from desk_pipeline.domain.schema import BOOK_COLUMNS

# CRE22.56-22.59: the minimum holding period of repo-style transactions is five business days.
# A book missing from the books frame is treated as a repo book in its instruments' own currencies.
DEFAULT_HOLDING_PERIOD_DAYS = 5

# Aligned float64 arrays, or one holding's floats (`desk ranking`'s ineligible rows).
Values = TypeVar("Values", np.ndarray, float)


def valued_items(items: pd.DataFrame, schedule: HaircutSchedule) -> pd.DataFrame:
    """Each holding's haircut, lendable value and eligibility: the ranking's rows, unranked.

    Args:
        items: :func:`priced_holdings` output joined with :func:`schedule_cells` (one row per
            held book, instrument and ``day``, the ranking day quoted in the reasons).
        schedule: the haircut schedule.

    Returns:
        ``schema.RANKING_DTYPES`` columns but ``rank``, then ``day``, aligned with ``items``:
        ``haircut`` from :func:`total_haircut`, ``value`` from :func:`lendable_value` (base
        currency), ``eligible`` and ``reason`` (None when clean) from
        :func:`eligibility.eligibility`.
    """
    haircut = total_haircut(
        items["base_haircut"].to_numpy(),
        items["holding_period_days"].to_numpy(),
        (items["currency"] != items["base_currency"]).to_numpy(),
        schedule,
    )
    quantity = items["quantity"].to_numpy(dtype="float64")
    price = items["price"].to_numpy(dtype="float64")
    fx_rate = items["fx_rate"].to_numpy(dtype="float64")
    eligible, reason = eligibility(items)
    return pd.DataFrame(
        {
            "book_id": items["book_id"].to_numpy(dtype=object),
            "instrument_id": items["instrument_id"].to_numpy(dtype=object),
            "quantity": quantity,
            "price": price,
            "fx_rate": fx_rate,
            "haircut": haircut,
            "value": lendable_value(quantity, price, fx_rate, haircut),
            "eligible": eligible,
            "reason": pd.Series(reason, dtype="object").replace("", None),
            "day": items["day"].to_numpy(),
        }
    )


def holding_terms(
    holdings: pd.DataFrame, master: pd.DataFrame, books: pd.DataFrame
) -> pd.DataFrame:
    """Each holding with its instrument's reference data and its book's terms.

    Args:
        holdings: ``book_id``, ``instrument_id``, ``quantity`` (``ranking.net_holdings``) and
            any further columns, which are kept.
        master: ``instrument_id``, ``asset_class``, ``issuer_type``, ``rating``,
            ``maturity_date``, ``currency``; one row per instrument id.
        books: ``schema.BOOK_DTYPES``; the last row of a repeated book id wins.

    Returns:
        ``holdings`` (same rows and order, fresh index) plus the instrument fields (missing for
        an unknown instrument), ``known`` (bool: the instrument is in ``master``),
        ``base_currency`` (:func:`base_currency_of`) and ``holding_period_days`` (float64 days;
        ``DEFAULT_HOLDING_PERIOD_DAYS`` for a book missing from ``books``, CRE22.56-22.59).
    """
    items = holdings.merge(master, on="instrument_id", how="left", validate="many_to_one")
    book_terms = books.loc[:, list(BOOK_COLUMNS)].drop_duplicates("book_id", keep="last")
    items = items.merge(book_terms, on="book_id", how="left", validate="many_to_one")
    return items.assign(
        known=items["instrument_id"].isin(master["instrument_id"]).to_numpy(),
        # The book terms merged above carry the base currency; a missing book keeps the
        # instrument's own (as base_currency_of).
        base_currency=items["base_currency"].fillna(items["currency"]),
        holding_period_days=items["holding_period_days"]
        .fillna(DEFAULT_HOLDING_PERIOD_DAYS)
        .astype("float64"),
    )


def priced_holdings(
    items: pd.DataFrame, prices: pd.DataFrame, fx_rates: pd.DataFrame
) -> pd.DataFrame:
    """Holdings with their day's mark and the rate that converts it into the book's base currency.

    Args:
        items: :func:`holding_terms` output (``instrument_id``, ``currency``, ``base_currency``)
            with ``day``, each row's ranking day (naive midnight); several days at once allowed.
        prices: ``schema.PRICE_DTYPES``; the latest price on or before the row's day is used.
        fx_rates: ``schema.FX_DTYPES``; the latest rates on or before the row's day are used.

    Returns:
        ``items`` plus ``price`` (per unit, instrument currency; NaN when unmarked),
        ``price_date``, ``price_age_days``, ``stale_price`` (``marks.marks_on``) and ``fx_rate``
        (float64, base currency per unit of the instrument's currency; NaN when a rate is
        missing).
    """
    days = items["day"]
    marked = items.join(marks_on(items["instrument_id"], days, prices))
    return marked.assign(
        fx_rate=fx_rates_on(marked["currency"], marked["base_currency"], days, fx_rates)
    )


def schedule_cells(
    master: pd.DataFrame, holdings: pd.DataFrame, schedule: HaircutSchedule
) -> pd.DataFrame:
    """The haircut schedule's cell for every held instrument that has reference data, per day.

    Args:
        master: as for :func:`holding_terms`.
        holdings: ``instrument_id`` and ``day`` (naive midnight) of every holding.
        schedule: the haircut schedule (``haircuts.load_schedule``).

    Returns:
        One row per distinct held (instrument, day): ``instrument_id``, ``day`` and the
        :func:`haircuts.haircuts_on` columns with ``eligible`` and ``reason`` renamed
        ``cell_eligible`` and ``cell_reason``: ``base_haircut`` (fraction at the schedule's
        reference holding period; NaN when the cell rejects the instrument).
    """
    held = holdings.loc[:, ["instrument_id", "day"]].drop_duplicates()
    terms = held.merge(master, on="instrument_id", how="inner", validate="many_to_one")
    cells = haircuts_on(terms, terms["day"].to_numpy(dtype="datetime64[ns]"), schedule)
    cells = cells.assign(day=terms["day"].to_numpy())
    return cells.rename(columns={"eligible": "cell_eligible", "reason": "cell_reason"})


def total_haircut(
    base_haircut: np.ndarray,
    holding_period_days: np.ndarray,
    currency_mismatch: np.ndarray,
    schedule: HaircutSchedule,
) -> np.ndarray:
    """Each holding's haircut H = min(Hc + Hfx, 1), scaled to its book's holding period.

    CRE22.40's ``C x (1 - Hc - Hfx)``: Hc is the schedule's cell scaled by the square-root-of-time
    rule (:func:`haircuts.scale_haircut`, CRE22.56-22.59), Hfx the schedule's FX add-on
    (:func:`haircuts.fx_addon`, CRE22.52) where the instrument's currency differs from the
    book's base currency. Capped at 1, so a long holding is never worth less than nothing.

    Args:
        base_haircut: float64 fractions at the schedule's reference period (NaN: no cell).
        holding_period_days: float64 days, the book's holding period, aligned.
        currency_mismatch: bool, the instrument's currency is not the book's base currency.
        schedule: the haircut schedule.

    Returns:
        float64 fractions aligned with the inputs; NaN where ``base_haircut`` is NaN.
    """
    security_haircut = np.asarray(scale_haircut(base_haircut, holding_period_days, schedule))
    fx_haircut = np.where(currency_mismatch, fx_addon(holding_period_days, schedule), 0.0)
    return np.minimum(security_haircut + fx_haircut, 1.0)


def lendable_value(quantity: Values, price: Values, fx_rate: Values, haircut: Values) -> Values:
    """Lendable value = quantity x price x fx_rate x (1 - haircut) (ARCHITECTURE.md).

    Args:
        quantity: float64 units held (negative when short).
        price: float64 per unit, in the instrument's currency.
        fx_rate: float64 base currency per unit of the instrument's currency.
        haircut: float64 fractions (:func:`total_haircut`); 0 gives the market value.

    Returns:
        float64 values in the book's base currency, aligned (or one float for floats); NaN where
        an input is NaN.
    """
    return quantity * price * fx_rate * (1.0 - haircut)


def base_currency_of(book_ids: pd.Series, currencies: pd.Series, books: pd.DataFrame) -> pd.Series:
    """The currency a holding's lendable value is in: its book's base currency.

    A book missing from ``books`` is valued in each instrument's own currency (``currencies``,
    aligned with ``book_ids``), as :func:`rank_collateral` values it.
    """
    base = books.drop_duplicates("book_id", keep="last").set_index("book_id")["base_currency"]
    return book_ids.map(base).fillna(currencies)
