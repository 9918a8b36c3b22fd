"""Collateral ranking: each book's holdings valued after haircuts and ranked by lendable value."""

import numpy as np
import pandas as pd

from desk_pipeline.domain.collateral.haircuts import business_day
from desk_pipeline.domain.collateral.holdings import holdings_from_positions
from desk_pipeline.domain.collateral.lendable import (
    base_currency_of,
    holding_terms,
    priced_holdings,
    schedule_cells,
    valued_items,
)
from desk_pipeline.domain.collateral.schedule import HaircutSchedule
from desk_pipeline.domain.precision import from_units, to_units
from desk_pipeline.domain.schema import (
    BOOK_COLUMNS,
    FX_COLUMNS,
    PRICE_COLUMNS,
    RANKING_DTYPES,
    conform,
    empty_frame,
    require_columns,
)

_INSTRUMENT_FIELDS = (
    "instrument_id",
    "asset_class",
    "issuer_type",
    "rating",
    "maturity_date",
    "currency",
)


def rank_collateral(
    positions: pd.DataFrame,
    instruments: pd.DataFrame,
    prices: pd.DataFrame,
    books: pd.DataFrame,
    fx_rates: pd.DataFrame,
    schedule: HaircutSchedule,
    business_date: pd.Timestamp,
) -> pd.DataFrame:
    """Rank every book's holdings by lendable value on ``business_date``.

    Lendable value = quantity x price x fx_rate x (1 - haircut), in the book's base currency, with
    haircut = Hc + Hfx (CRE22.40's ``C x (1 - Hc - Hfx)``): Hc is the schedule's cell for the
    instrument and Hfx the schedule's FX add-on when the instrument's currency differs from the
    book's base currency, both scaled to the book's holding period by the square-root-of-time
    rule; the sum is capped at 1 so a value is never negative for a long holding.

    Args:
        positions: ``book_id``, ``instrument_id``, ``quantity`` (``schema.POSITION_DTYPES``).
            Flat rows (quantity 0, kept only for their realised P&L) are not holdings and are
            dropped; duplicate (book, instrument) rows are summed first.
        instruments: ``schema.INSTRUMENT_DTYPES``; the last row of a repeated id wins.
        prices: ``schema.PRICE_DTYPES``; the latest non-missing price with ``price_date <=
            business_date`` is used. A mark older than ``STALE_PRICE_DAYS`` calendar days
            keeps the item eligible with a ``stale_price`` note in ``reason``.
        books: ``schema.BOOK_DTYPES``. A book missing here gets
            ``lendable.DEFAULT_HOLDING_PERIOD_DAYS`` and each instrument's own currency as base
            currency (fx_rate 1, no FX add-on).
        fx_rates: ``schema.FX_DTYPES``; the latest rate with ``rate_date <= business_date`` per
            currency. USD is worth 1 USD when it has no row.
        schedule: The haircut schedule (``haircuts.load_schedule``).
        business_date: The ranking day; only its calendar date is used.

    Returns:
        ``schema.RANKING_DTYPES`` columns, one row per held (book, instrument), ordered by book,
        then eligible items by rank (1 = highest value; ties on instrument_id), then ineligible
        items by instrument_id with rank <NA>. ``fx_rate`` = usd_per_unit(instrument currency) /
        usd_per_unit(base currency). ``reason`` is None for a clean eligible item, otherwise
        ``"; "``-joined ``"<code>: <detail>"`` parts, the deciding code first:
        ``unknown_instrument``, ``short_position``, the schedule's codes (``matured``,
        ``asset_class_not_accepted``, ``rating_below_floor``, ``not_eligible``,
        ``no_schedule_cell``), ``no_price``, ``no_fx_rate``, then the ``stale_price`` warning.
        ``haircut`` and ``value`` are filled whenever their inputs are known, ineligible items
        included (a short position shows its negative value); they are NaN otherwise, e.g. for
        an instrument the schedule rejects.
        The inputs are not modified.
    """
    require_columns(positions, ("book_id", "instrument_id", "quantity"), where="rank_collateral")
    _require_reference(instruments, prices, books, fx_rates)
    day = np.datetime64(business_day(business_date), "ns")
    holdings = net_holdings(positions).assign(day=day)
    ranked = _rank_held(holdings, instruments, prices, books, fx_rates, schedule)
    return ranked.drop(columns="day")


def _require_reference(
    instruments: pd.DataFrame, prices: pd.DataFrame, books: pd.DataFrame, fx_rates: pd.DataFrame
) -> None:
    """Raise ValueError naming the first reference frame that lacks a column the ranking reads."""
    require_columns(instruments, _INSTRUMENT_FIELDS, where="rank_collateral instruments")
    require_columns(prices, PRICE_COLUMNS, where="rank_collateral prices")
    require_columns(books, BOOK_COLUMNS, where="rank_collateral books")
    require_columns(fx_rates, FX_COLUMNS, where="rank_collateral fx_rates")


def _rank_held(
    holdings: pd.DataFrame,
    instruments: pd.DataFrame,
    prices: pd.DataFrame,
    books: pd.DataFrame,
    fx_rates: pd.DataFrame,
    schedule: HaircutSchedule,
) -> pd.DataFrame:
    """:func:`rank_collateral` of netted ``holdings`` of one or several days, in one pass.

    ``holdings`` has :func:`net_holdings`' columns plus ``day`` (each row's ranking day, naive
    midnight). Every step is vectorised over all rows: marks, rates and schedule cells are
    looked up per (instrument, day) once, and items are ranked within their (day, book).
    Returns RANKING_DTYPES then ``day``, ordered by day, then as :func:`rank_collateral`.
    """
    if holdings.empty:
        return _empty_ranked()
    master = instruments.loc[:, list(_INSTRUMENT_FIELDS)].drop_duplicates(
        "instrument_id", keep="last"
    )
    items = priced_holdings(holding_terms(holdings, master, books), prices, fx_rates)
    items = items.merge(
        schedule_cells(master, holdings, schedule),
        on=["instrument_id", "day"],
        how="left",
        validate="many_to_one",
    )
    return _ranked(valued_items(items, schedule))


def net_holdings(positions: pd.DataFrame) -> pd.DataFrame:
    """The (book, instrument) pairs actually held: duplicates summed, flat pairs dropped.

    Args:
        positions: ``book_id``, ``instrument_id``, ``quantity`` (float64 units); not modified.

    Returns:
        ``book_id``, ``instrument_id``, ``quantity`` (float64, non-zero), one row per pair,
        ordered by book and instrument. Quantities are summed in micro-units
        (``precision.to_units``), so duplicate rows add exactly as decimals do.
    """
    holdings = (
        positions.loc[:, ["book_id", "instrument_id", "quantity"]]
        .assign(quantity=lambda f: to_units(f["quantity"]))
        .groupby(["book_id", "instrument_id"], sort=True, as_index=False)["quantity"]
        .sum()
    )
    holdings = holdings.loc[holdings["quantity"] != 0].reset_index(drop=True)
    holdings["quantity"] = from_units(holdings["quantity"])
    return holdings


def _ranked(items: pd.DataFrame) -> pd.DataFrame:
    """Number eligible items per day and book by value (descending, ties on instrument_id).

    Orders all items by day, book, eligible ones by rank, then the rest by instrument_id.
    Returns RANKING_DTYPES then ``day``.
    """
    eligible = items.loc[items["eligible"]].sort_values(
        ["day", "book_id", "value", "instrument_id"],
        ascending=[True, True, False, True],
        kind="stable",
    )
    rank = pd.Series(pd.NA, index=items.index, dtype="Int64")
    rank.loc[eligible.index] = eligible.groupby(["day", "book_id"], sort=False).cumcount() + 1
    ordered = items.assign(rank=rank, _ineligible=~items["eligible"]).sort_values(
        ["day", "book_id", "_ineligible", "rank", "instrument_id"],
        na_position="last",
        kind="stable",
    )
    return conform(ordered, {**RANKING_DTYPES, "day": "datetime64[ns]"})


def in_ranking_order(items: pd.DataFrame) -> pd.DataFrame:
    """Ranking rows as a ranking is read: per book and day, eligible items by rank, then the rest.

    Args:
        items: rows with ``book_id``, ``rank`` (null when ineligible), ``eligible``,
            ``instrument_id`` and, when several days are present, ``business_date``.

    Returns:
        The same rows, reordered, with a fresh index.
    """
    keys = [c for c in ("book_id", "business_date") if c in items.columns]
    ordered = items.assign(_ineligible=~items["eligible"].astype(bool)).sort_values(
        [*keys, "_ineligible", "rank", "instrument_id"], na_position="last", kind="stable"
    )
    return ordered.drop(columns="_ineligible").reset_index(drop=True)


def rank_collateral_days(
    eod: pd.DataFrame,
    instruments: pd.DataFrame,
    prices: pd.DataFrame,
    books: pd.DataFrame,
    fx_rates: pd.DataFrame,
    schedule: HaircutSchedule,
) -> pd.DataFrame:
    """:func:`rank_collateral` for every business day of stored end-of-day positions at once.

    Each day's rows equal :func:`rank_collateral` of that day's positions on that day: marks,
    rates, staleness, residual maturities and reasons are the day's own. All days go through
    one vectorised pass, so a day adds its rows' cost, not a whole ranking's (a weekend repeats
    Friday's holdings, yet its marks age and its bonds come closer to maturity).

    Args:
        eod: POSITION_DTYPES plus ``business_date`` (YYYY-MM-DD), ``snapshot_id`` and ``as_of``.
        instruments: as for :func:`rank_collateral`.
        prices: as for :func:`rank_collateral`, covering every day of ``eod``.
        books: as for :func:`rank_collateral`.
        fx_rates: as for :func:`rank_collateral`, covering every day of ``eod``.
        schedule: the haircut schedule.

    Returns:
        ``book_id``, ``business_date``, ``snapshot_id``, ``as_of`` and the other RANKING_DTYPES
        columns, one row per held instrument per book and day, ordered by day, book and as
        :func:`rank_collateral`.
    """
    holdings = holdings_from_positions(eod)
    _require_reference(instruments, prices, books, fx_rates)
    holdings = holdings.assign(
        day=pd.to_datetime(holdings["business_date"]).astype("datetime64[ns]")
    )
    snapshot_of = holdings.drop_duplicates(["book_id", "business_date"])[
        ["book_id", "business_date", "snapshot_id", "as_of", "day"]
    ]
    # The holdings are netted per day, book and instrument already: no net_holdings here.
    ranked = _rank_held(
        holdings.loc[:, ["book_id", "instrument_id", "quantity", "day"]],
        instruments,
        prices,
        books,
        fx_rates,
        schedule,
    )
    return snapshot_of.merge(ranked, on=["book_id", "day"], how="inner").drop(columns="day")


def lendable_by_currency(
    ranking: pd.DataFrame, instruments: pd.DataFrame, books: pd.DataFrame
) -> pd.DataFrame:
    """Eligible ranking items with the currency their value is in, never adding currencies.

    Args:
        ranking: ``rank_collateral_days`` output.
        instruments: ``instrument_id`` and ``currency`` (the last row of a repeated id wins).
        books: ``book_id`` and ``base_currency``.

    Returns:
        The eligible rows of ``ranking`` plus ``currency`` (ISO 4217), ordered by currency,
        descending value, book and instrument.
    """
    require_columns(
        ranking, ("book_id", "instrument_id", "value", "eligible"), where="lendable_by_currency"
    )
    eligible = ranking.loc[ranking["eligible"].astype(bool)]
    currency = eligible["instrument_id"].map(
        instruments.drop_duplicates("instrument_id", keep="last").set_index("instrument_id")[
            "currency"
        ]
    )
    out = eligible.assign(currency=base_currency_of(eligible["book_id"], currency, books))
    return out.sort_values(
        ["currency", "value", "book_id", "instrument_id"],
        ascending=[True, False, True, True],
        kind="stable",
    ).reset_index(drop=True)


CONCENTRATION_COLUMNS = ("book_id", "business_date", "issuer", "value", "share", "over_limit")


def issuer_concentration(
    ranking: pd.DataFrame, instruments: pd.DataFrame, limit: float
) -> pd.DataFrame:
    """Each issuer's share of a book's eligible lendable value per day, flagged over ``limit``.

    Args:
        ranking: ``rank_collateral_days`` output (``book_id``, ``business_date``,
            ``instrument_id``, ``value``, ``eligible``). Only eligible items count.
        instruments: ``instrument_id`` and ``issuer``; the last row of a repeated id wins. An
            instrument without an issuer counts as its own issuer, so unknowns never pool.
        limit: the largest allowed share, e.g. 0.25; a share strictly above it is flagged.

    Returns:
        ``CONCENTRATION_COLUMNS``, one row per (book, day, issuer), ordered by book, day and
        descending share (ties on issuer). ``share`` is value / the book-day's eligible total;
        NaN when that total is not positive (nothing is then flagged).
    """
    require_columns(
        ranking,
        ("book_id", "business_date", "instrument_id", "value", "eligible"),
        where="issuer_concentration",
    )
    require_columns(instruments, ("instrument_id", "issuer"), where="issuer_concentration")
    eligible = ranking.loc[ranking["eligible"].astype(bool)]
    issuers = instruments.drop_duplicates("instrument_id", keep="last").set_index("instrument_id")
    issuer = eligible["instrument_id"].map(issuers["issuer"])
    frame = pd.DataFrame(
        {
            "book_id": eligible["book_id"].to_numpy(dtype=object),
            "business_date": eligible["business_date"].to_numpy(dtype=object),
            "issuer": issuer.fillna(eligible["instrument_id"]).to_numpy(dtype=object),
            "value": eligible["value"].to_numpy(dtype="float64"),
        }
    )
    keys = ["book_id", "business_date", "issuer"]
    per_issuer = frame.groupby(keys, as_index=False)["value"].sum()
    total = per_issuer.groupby(["book_id", "business_date"])["value"].transform("sum")
    share = per_issuer["value"] / total.where(total > 0)
    result = per_issuer.assign(share=share, over_limit=(share > limit).to_numpy(dtype=bool))
    result = result.sort_values(
        ["book_id", "business_date", "share", "issuer"],
        ascending=[True, True, False, True],
        kind="stable",
    )
    return result.loc[:, list(CONCENTRATION_COLUMNS)].reset_index(drop=True)


def _empty_ranked() -> pd.DataFrame:
    return empty_frame({**RANKING_DTYPES, "day": "datetime64[ns]"})
