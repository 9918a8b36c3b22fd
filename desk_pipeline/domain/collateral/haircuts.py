"""Haircut lookup: each instrument's cell in a haircut schedule, and the cell's scaling.

The schedule format and its parsing are in ``schedule``, the rating scales in ``ratings``. The
lookup follows the Basel supervisory haircut table (CRE22.49): a schedule cell is chosen by asset
class and issuer type, rating band and residual-maturity bucket; the first matching cell in file
order wins. Haircuts are then scaled to a book's holding period (CRE22.56-22.59) and a currency
mismatch adds the FX haircut (CRE22.52).

Lookup outcomes (``haircuts_for``), as stable short codes at the start of ``reason``:
``matured``, ``asset_class_not_accepted`` (no eligible row for the instrument's asset class and
issuer type), ``rating_below_floor`` (unrated, or rated worse than the worst rating of any eligible
row for that class), ``not_eligible`` (the matching row says so), ``no_schedule_cell`` (no row
matches, e.g. a maturity outside every bucket).
"""

from typing import Literal

import numpy as np
import pandas as pd

from desk_pipeline.domain.collateral.ratings import rating_notch
from desk_pipeline.domain.collateral.schedule import HaircutSchedule, MaturityBuckets
from desk_pipeline.domain.reasons import first_reasons, number_text, text
from desk_pipeline.domain.schema import require_columns

HAIRCUT_DTYPES = {
    "instrument_id": "object",
    "base_haircut": "float64",  # fraction at the schedule's reference holding period
    "eligible": "bool",
    "reason": "object",  # None when eligible
}

# Calendar years: residual maturity buckets are coarse (1, 3, 5, 10 years), so the day count
# convention only moves bonds that mature within a day of a bucket boundary.
DAYS_PER_YEAR = 365.25

# Haircuts or holding periods: one value, or one per row (a Series or a NumPy array).
Values = pd.Series | np.ndarray | float


def scale_haircut(
    haircut: Values, holding_period_days: Values, schedule: HaircutSchedule
) -> Values:
    """Scale haircuts quoted at the schedule's reference period to another holding period.

    Square-root-of-time rule of CRE22.56-22.59: ``H = H_ref * sqrt(T / T_ref)``, Basel's
    ``H10 * sqrt((N_R + T_M - 1) / 10)`` with daily remargining (N_R = 1); e.g. Basel's 4 % at
    10 days is 4 % x sqrt(5 / 10) = 2.828 % at the 5-day repo holding period. Schedules without a
    reference holding period are not scaled.
    """
    if schedule.reference_holding_period_days is None:
        return haircut
    return haircut * np.sqrt(holding_period_days / schedule.reference_holding_period_days)


def residual_maturity_years(
    maturity_date: pd.Series, business_date: pd.Timestamp | np.ndarray
) -> pd.Series:
    """Years from the business day to each maturity (calendar days / 365.25); NaN when undated.

    ``business_date`` is one day for every row, or a ``datetime64`` array of naive days aligned
    with ``maturity_date``.
    """
    day = (
        business_date
        if isinstance(business_date, np.ndarray)
        else np.datetime64(business_day(business_date))
    )
    days = (pd.to_datetime(maturity_date) - day).dt.days
    return days.astype("float64") / DAYS_PER_YEAR


def business_day(business_date: pd.Timestamp) -> pd.Timestamp:
    """The calendar day of ``business_date`` as a naive midnight timestamp.

    Reference data (maturities, price and rate dates) carries naive dates, so a tz-aware business
    date keeps its wall-clock day and drops the zone.
    """
    stamp = pd.Timestamp(business_date)
    if stamp.tz is not None:
        stamp = stamp.tz_localize(None)
    return stamp.normalize()


def haircuts_for(
    instruments: pd.DataFrame, business_date: pd.Timestamp, schedule: HaircutSchedule
) -> pd.DataFrame:
    """Each instrument's haircut cell in ``schedule`` on ``business_date``.

    Args:
        instruments: ``schema.INSTRUMENT_DTYPES`` columns (``asset_class``, ``issuer_type``,
            ``rating``, ``maturity_date`` are used); not modified.
        business_date: The day the residual maturity is measured from.
        schedule: A parsed schedule.

    Returns:
        One row per input row, in input order: ``instrument_id``, ``base_haircut`` (fraction at
        the schedule's reference holding period, before scaling and FX add-on; NaN when
        ineligible), ``eligible`` (bool), ``reason`` (None when eligible, else
        ``"<code>: <detail>"`` with the codes of the module docstring).
    """
    day = np.datetime64(business_day(business_date), "ns")
    return haircuts_on(instruments, np.full(len(instruments), day), schedule)


_TERMS = ("instrument_id", "asset_class", "issuer_type", "rating", "maturity_date")


def haircuts_on(
    instruments: pd.DataFrame, days: np.ndarray, schedule: HaircutSchedule
) -> pd.DataFrame:
    """:func:`haircuts_for` with a day per row: each (instrument, day)'s cell, all days at once.

    The day decides a cell only through the residual maturity: which of the schedule's bucket
    bounds it passes (:func:`_maturity_segment`) and whether the instrument has matured. Rows
    alike in their terms and those two are looked up once, so a range's days cost what the
    bucket crossings in it cost, not a lookup each; only a ``no_schedule_cell`` reason, which
    quotes the residual maturity, is worded for each row's own day.

    Args:
        instruments: as for :func:`haircuts_for`; an instrument may repeat, once per day.
        days: ``datetime64[ns]`` naive days (``business_day``), aligned with ``instruments``.
        schedule: A parsed schedule.

    Returns:
        As :func:`haircuts_for`, one row per input row in input order.
    """
    require_columns(instruments, _TERMS, where="haircuts_for")
    terms = instruments.loc[:, list(_TERMS)].reset_index(drop=True)
    maturity = pd.to_datetime(terms["maturity_date"]).to_numpy(dtype="datetime64[ns]")
    alike = terms.assign(
        segment=_maturity_segment(residual_maturity_years(terms["maturity_date"], days), schedule),
        matured=maturity < days,
    )
    group = alike.groupby(list(alike.columns), sort=False, dropna=False).ngroup().to_numpy()
    first = ~pd.Series(group).duplicated().to_numpy()
    shared = _lookup(terms.loc[first], days[first], schedule)
    cells = shared.iloc[group].reset_index(drop=True)
    quoted = np.array(
        [isinstance(r, str) and r.startswith("no_schedule_cell") for r in shared["reason"]],
        dtype=bool,
    )[group]
    if quoted.any():
        cells.loc[quoted, "reason"] = _lookup(terms.loc[quoted], days[quoted], schedule)[
            "reason"
        ].to_numpy()
    return cells


def _maturity_segment(years: pd.Series, schedule: HaircutSchedule) -> np.ndarray:
    """Per residual maturity (float64 years, NaN when undated), how many bucket bounds it passes.

    Two maturities with the same count compare alike with every bound of the schedule
    (``_maturity_in_bucket``): ``(from, to]`` counts the bounds strictly below, ``[from, to)``
    those at or below. Undated instruments pass them all, as in the lookup. Returns int64.
    """
    rules = schedule.rules
    bounds = np.unique(
        pd.concat([rules["maturity_from"], rules["maturity_to"]]).dropna().to_numpy("float64")
    )
    side: Literal["left", "right"] = (
        "left" if schedule.maturity_buckets == "upper_inclusive" else "right"
    )
    return np.searchsorted(bounds, years.fillna(np.inf).to_numpy("float64"), side=side)


def _lookup(instruments: pd.DataFrame, days: np.ndarray, schedule: HaircutSchedule) -> pd.DataFrame:
    """The lookup of :func:`haircuts_on` for every row as given (no rows shared)."""
    inst = _instrument_terms(instruments, days)
    pairs = _class_pairs(inst, schedule.rules)
    accepted = _accepted(pairs, len(inst))
    floor_notch = _floor_notch(pairs, accepted)
    in_cell = _rating_in_band(pairs) & _maturity_in_bucket(pairs, schedule.maturity_buckets)
    lookup = inst.assign(
        matured=(inst["maturity_date"].to_numpy() < days),
        accepted=accepted,
        below_floor=accepted & _below_floor(inst["notch"].to_numpy(), floor_notch),
        **_first_cells(pairs.loc[in_cell], inst["row"]),
    )
    return _haircut_frame(lookup, _lookup_reasons(lookup, schedule.name))


def _instrument_terms(instruments: pd.DataFrame, days: np.ndarray) -> pd.DataFrame:
    """The instrument terms the lookup reads, one row per input row in input order.

    Args:
        instruments: ``instrument_id``, ``asset_class``, ``issuer_type``, ``rating`` (object) and
            ``maturity_date`` (datetime64, NaT when undated); not modified.
        days: The naive business day of each row (``datetime64[ns]``, ``business_day``).

    Returns:
        Columns ``row`` (int64, 0..n-1), ``instrument_id``, ``asset_class``, ``issuer_type``,
        ``rating`` (object), ``notch`` (float64, ``ratings.rating_notch``, NaN when unrated),
        ``maturity_date`` (datetime64[ns], naive) and ``years`` (float64 residual maturity in
        years, ``inf`` when undated).
    """
    inst = pd.DataFrame(
        {
            "row": np.arange(len(instruments), dtype="int64"),
            "instrument_id": instruments["instrument_id"].astype(object).to_numpy(),
            "asset_class": instruments["asset_class"].astype(object).to_numpy(),
            "issuer_type": instruments["issuer_type"].astype(object).to_numpy(),
            "rating": instruments["rating"].astype(object).to_numpy(),
            "notch": rating_notch(instruments["rating"]).to_numpy(),
            "maturity_date": pd.to_datetime(instruments["maturity_date"]).to_numpy(),
        }
    )
    years = residual_maturity_years(inst["maturity_date"], days)
    # Perpetuals and equities have no maturity: they fall in the longest bucket or a bucketless row.
    inst["years"] = years.fillna(np.inf)
    return inst


def _class_pairs(inst: pd.DataFrame, rules: pd.DataFrame) -> pd.DataFrame:
    """Every (instrument, rule) pair whose asset class and issuer type agree (CRE22.49 columns).

    A rule with no asset class or no issuer type accepts any. Each pair carries the instrument's
    ``row``, ``asset_class``, ``inst_issuer_type``, ``notch`` and ``years`` and the rule's columns
    of ``HaircutSchedule.rules``; rules of one instrument keep their file order.
    """
    inst_side = inst.loc[:, ["row", "asset_class", "issuer_type", "notch", "years"]].rename(
        columns={"issuer_type": "inst_issuer_type"}
    )
    specific = rules.loc[rules["asset_class"].notna()]
    any_class = rules.loc[rules["asset_class"].isna()].drop(columns="asset_class")
    pairs = pd.concat(
        [
            inst_side.merge(specific, on="asset_class", how="inner"),
            inst_side.merge(any_class, how="cross"),
        ],
        ignore_index=True,
    )
    same_issuer = pairs["issuer_type"].isna() | (pairs["issuer_type"] == pairs["inst_issuer_type"])
    return pairs.loc[same_issuer]


def _rating_in_band(pairs: pd.DataFrame) -> pd.Series:
    """Whether the instrument's rating lies in the rule's band, both ends inclusive (CRE22.49).

    Notches (float64) count from 0 = AAA; a missing bound is open, and an unrated instrument (NaN
    notch) fails every bound. Returns a bool series aligned with ``pairs``.
    """
    return (pairs["best_notch"].isna() | (pairs["notch"] >= pairs["best_notch"])) & (
        pairs["worst_notch"].isna() | (pairs["notch"] <= pairs["worst_notch"])
    )


def _maturity_in_bucket(pairs: pd.DataFrame, buckets: MaturityBuckets) -> pd.Series:
    """Whether the residual maturity (``years``, float64) lies in the rule's bucket.

    ``upper_inclusive`` is CRE22.49's ``> 1 year, <= 3 years``, ``(from, to]``;
    ``lower_inclusive`` is ``[from, to)``. A missing bound (NaN) is open. Returns a bool series
    aligned with ``pairs``.
    """
    if buckets == "upper_inclusive":
        above = pairs["years"] > pairs["maturity_from"]
        below = pairs["years"] <= pairs["maturity_to"]
    else:
        above = pairs["years"] >= pairs["maturity_from"]
        below = pairs["years"] < pairs["maturity_to"]
    return (pairs["maturity_from"].isna() | above) & (pairs["maturity_to"].isna() | below)


def _accepted(pairs: pd.DataFrame, n: int) -> np.ndarray:
    """Per instrument (bool, length ``n``): some eligible rule covers its class and issuer type."""
    accepted = np.zeros(n, dtype=bool)
    accepted[pairs.loc[pairs["eligible"], "row"].unique().astype("int64")] = True
    return accepted


def _floor_notch(pairs: pd.DataFrame, accepted: np.ndarray) -> np.ndarray:
    """Per instrument (float64): the worst notch any eligible rule of its class accepts.

    The floor is the worst rating any eligible row of the class accepts; a rating-free eligible
    row (e.g. equities) means the class has no floor at all (``inf``). NaN where no eligible rule
    covers the instrument (``accepted`` is False).
    """
    accepting = pairs.loc[pairs["eligible"]]
    floor = accepting.assign(worst=accepting["worst_notch"].fillna(np.inf)).groupby("row")["worst"]
    floor_notch = np.full(len(accepted), np.nan)
    floor_max = floor.max()
    floor_notch[floor_max.index.to_numpy()] = floor_max.to_numpy()
    return floor_notch


def _below_floor(notch: np.ndarray, floor_notch: np.ndarray) -> np.ndarray:
    """Whether each rating (float64 notch, NaN = unrated) is below a finite floor (bool).

    An unrated instrument is below any finite floor; no floor (``inf`` or NaN) is never breached.
    """
    return np.isfinite(floor_notch) & ~(notch <= floor_notch)


def _first_cells(matches: pd.DataFrame, rows: pd.Series) -> dict[str, np.ndarray]:
    """Per instrument of ``rows``, the first matching rule in file order (the schedule's cell).

    Args:
        matches: The (instrument, rule) pairs whose class, rating and maturity all match.
        rows: The instruments' ``row`` numbers (int64), in output order.

    Returns:
        Arrays aligned with ``rows``: ``cell_haircut`` (float64 fraction, NaN when no cell or not
        eligible), ``cell_note`` (object, NaN when no cell), ``has_cell`` (bool) and
        ``cell_says_no`` (bool: the cell lists the instrument as not eligible).
    """
    first = (
        matches.sort_values(["row", "order"], kind="stable")
        .drop_duplicates("row", keep="first")
        .set_index("row")
    )
    cell_eligible = first["eligible"].reindex(rows).to_numpy(dtype=object)
    has_cell = pd.notna(cell_eligible)
    return {
        "cell_haircut": first["haircut"].reindex(rows).to_numpy(),
        "cell_note": first["note"].reindex(rows).to_numpy(dtype=object),
        "has_cell": has_cell,
        "cell_says_no": has_cell & (cell_eligible != True),  # noqa: E712 (object array of bool/NaN)
    }


def _lookup_reasons(lookup: pd.DataFrame, name: str) -> np.ndarray:
    """Per instrument, the first failed step's ``"<code>: <detail>"``; None when eligible.

    ``lookup`` holds ``_instrument_terms`` plus the bool columns ``matured``, ``accepted``,
    ``below_floor``, ``cell_says_no``, ``has_cell`` and ``cell_note``; ``name`` is the schedule's.
    The codes, in the order they are tried, are those of the module docstring.
    """
    flag = {
        column: lookup[column].to_numpy(dtype=bool)
        for column in ("matured", "accepted", "below_floor", "cell_says_no", "has_cell")
    }
    return first_reasons(
        lookup,
        [
            (
                flag["matured"],
                lambda r: "matured: " + text(r["instrument_id"]) + " matured on "
                + text(r["maturity_date"].dt.strftime("%Y-%m-%d")),
            ),
            (
                ~flag["accepted"],
                lambda r: "asset_class_not_accepted: " + name + " accepts no "
                + text(r["asset_class"]) + " issued by " + text(r["issuer_type"]) + " issuers",
            ),
            (
                flag["below_floor"],
                lambda r: "rating_below_floor: " + text(r["instrument_id"]) + " (" + _rating_text(r)
                + ") is below the " + name + " floor for " + text(r["asset_class"]),
            ),
            (
                flag["cell_says_no"],
                lambda r: "not_eligible: " + name + " lists " + text(r["cell_note"])
                + " as not eligible",
            ),
            (
                ~flag["has_cell"],
                lambda r: "no_schedule_cell: no " + name + " cell for " + text(r["instrument_id"])
                + " (" + text(r["asset_class"]) + ", " + _rating_text(r) + ", "
                + _residual_maturity_text(r) + ")",
            ),
        ],
    )  # fmt: skip


def _rating_text(rows: pd.DataFrame) -> pd.Series:
    """Each row's ``rating`` as text for a reason, ``unrated`` where it has no notch."""
    return text(rows["rating"].where(rows["notch"].notna(), "unrated"))


def _residual_maturity_text(rows: pd.DataFrame) -> pd.Series:
    """Each row's residual maturity for a reason: ``1.29 years``, or ``no maturity date``."""
    years = rows["years"]
    dated = np.isfinite(years.to_numpy(dtype="float64"))
    worded = number_text(years.where(dated), 2) + " years"
    return worded.where(dated, "no maturity date")


def _haircut_frame(lookup: pd.DataFrame, reason: np.ndarray) -> pd.DataFrame:
    """The ``HAIRCUT_DTYPES`` frame: the cell's haircut where no reason applies, else NaN."""
    eligible = pd.isna(reason)
    return pd.DataFrame(
        {
            "instrument_id": lookup["instrument_id"].to_numpy(dtype=object),
            "base_haircut": np.where(eligible, lookup["cell_haircut"].to_numpy(), np.nan).astype(
                "float64"
            ),
            "eligible": eligible.astype(bool),
            # An explicit object series: pandas would otherwise infer a string dtype and turn the
            # eligible rows' None into NaN.
            "reason": pd.Series(reason, dtype="object"),
        }
    ).astype(HAIRCUT_DTYPES)


def fx_addon(holding_period_days: Values, schedule: HaircutSchedule) -> Values:
    """The schedule's currency-mismatch haircut scaled to ``holding_period_days``.

    Basel's 8 % at 10 days is 8 % x sqrt(5 / 10) = 5.657 % at 5 days.
    """
    return scale_haircut(schedule.fx_addon, holding_period_days, schedule)
