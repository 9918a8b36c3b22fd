"""Collateral haircut schedules: parse them from CSV text and look up each instrument's haircut.

A schedule is a CSV file (UTF-8, header row; lines starting with ``#`` are comments) with columns::

    rule,key,value,asset_class,issuer_type,rating_best,rating_worst,
    maturity_from_years,maturity_to_years,haircut_pct,eligible,note

Two kinds of row, told apart by ``rule``:

``setting`` rows use ``key`` and ``value`` only:

- ``name``: the schedule's name (default ``unnamed``).
- ``reference_holding_period_days``: the holding period the haircuts are quoted for (Basel: 10).
  The haircuts and the FX add-on are scaled to a book's holding period T by the square-root-of-time
  rule ``H = H_ref * sqrt(T / T_ref)`` (CRE22.56-22.59). Absent: haircuts are applied as published.
- ``fx_addon_pct``: the currency-mismatch haircut at the reference holding period (Basel CRE22.52:
  8), added when the instrument's currency differs from the book's base currency. Absent: 0.
- ``maturity_buckets``: ``upper_inclusive`` (default; Basel's ``> 1 year, <= 3 years``, i.e.
  ``(from, to]``) or ``lower_inclusive`` (``[from, to)``, as central banks publish them).

``haircut`` rows are the cells of the table, one row per cell:

- ``asset_class``: one of ``schema.ASSET_CLASSES`` or several joined with ``|``; blank = any.
- ``issuer_type``: one of ``schema.ISSUER_TYPES`` or several joined with ``|``; blank = any.
- ``rating_best`` / ``rating_worst``: the rating band, inclusive, on the S&P scale of
  ``RATING_SCALE`` (``AAA`` … ``D``); blank = no bound. A row with a rating bound never matches an
  unrated instrument.
- ``maturity_from_years`` / ``maturity_to_years``: the residual-maturity bucket in years; blank =
  no bound. Instruments without a maturity date (perpetuals, equities) have infinite maturity.
- ``haircut_pct``: the haircut in percent at the reference holding period; required when eligible.
- ``eligible``: ``true`` (default when blank) or ``false`` for a cell the schedule lists as
  "not eligible"; ``haircut_pct`` stays blank then.
- ``note``: free text, e.g. the cell's citation; becomes part of a ``not_eligible`` reason.

Rows are tried in file order and the first matching one wins, so a specific row placed before a
general one overrides it. ``key`` and ``value`` are blank on ``haircut`` rows, the cell columns on
``setting`` rows.

Lookup outcomes (``haircuts_for``), as stable short codes at the start of ``reason``:
``matured``, ``asset_class_not_accepted`` (no eligible row for the instrument's asset class and
issuer type), ``rating_below_floor`` (unrated, or rated worse than the worst rating of any eligible
row for that class), ``not_eligible`` (the matching row says so), ``no_schedule_cell`` (no row
matches, e.g. a maturity outside every bucket).
"""

import io
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from desk_pipeline.domain.errors import DeskPipelineError
from desk_pipeline.domain.reasons import first_reasons, text
from desk_pipeline.domain.schema import ASSET_CLASSES, ISSUER_TYPES, require_columns

SCHEDULE_COLUMNS = (
    "rule",
    "key",
    "value",
    "asset_class",
    "issuer_type",
    "rating_best",
    "rating_worst",
    "maturity_from_years",
    "maturity_to_years",
    "haircut_pct",
    "eligible",
    "note",
)

# Long-term rating scales, best first; Fitch uses the S&P symbols. Equal positions are the
# agencies' usual equivalences, so a Moody's-rated bond lands in the same Basel band.
RATING_SCALE: tuple[str, ...] = (
    "AAA", "AA+", "AA", "AA-", "A+", "A", "A-", "BBB+", "BBB", "BBB-", "BB+", "BB", "BB-",
    "B+", "B", "B-", "CCC+", "CCC", "CCC-", "CC", "C", "D",
)  # fmt: skip
MOODYS_SCALE: tuple[str, ...] = (
    "Aaa", "Aa1", "Aa2", "Aa3", "A1", "A2", "A3", "Baa1", "Baa2", "Baa3", "Ba1", "Ba2", "Ba3",
    "B1", "B2", "B3", "Caa1", "Caa2", "Caa3", "Ca", "C",
)  # fmt: skip
_NOTCH: dict[str, int] = {
    **{r: i for i, r in enumerate(MOODYS_SCALE)},
    **{r: i for i, r in enumerate(RATING_SCALE)},
    "SD": RATING_SCALE.index("D"),
    "RD": RATING_SCALE.index("D"),
}

HAIRCUT_DTYPES = {
    "instrument_id": "object",
    "base_haircut": "float64",  # fraction at the schedule's reference holding period
    "eligible": "bool",
    "reason": "object",  # None when eligible
}

# Calendar years: residual maturity buckets are coarse (1, 3, 5, 10 years), so the day count
# convention only moves bonds that mature within a day of a bucket boundary.
DAYS_PER_YEAR = 365.25

MaturityBuckets = Literal["upper_inclusive", "lower_inclusive"]
# Haircuts or holding periods: one value, or one per row (a Series or a NumPy array).
Values = pd.Series | np.ndarray | float


class HaircutScheduleError(DeskPipelineError):
    """A haircut schedule file is malformed."""


@dataclass(frozen=True, eq=False)
class HaircutSchedule:
    """A parsed haircut schedule.

    Attributes:
        name: The schedule's name.
        rules: One row per (cell, asset class, issuer type) in file order, columns ``order``
            (the cell's position in the file), ``asset_class``, ``issuer_type`` (None = any),
            ``best_notch``, ``worst_notch``, ``maturity_from``, ``maturity_to`` (float, NaN = no
            bound), ``haircut`` (fraction, NaN when not eligible), ``eligible``, ``note``.
        reference_holding_period_days: The holding period the haircuts are quoted for; None when
            they are not to be scaled.
        fx_addon: The currency-mismatch haircut (fraction) at the reference holding period.
        maturity_buckets: Which end of a maturity bucket is inclusive.
    """

    name: str
    rules: pd.DataFrame
    reference_holding_period_days: int | None
    fx_addon: float
    maturity_buckets: MaturityBuckets


def rating_notch(ratings: pd.Series) -> pd.Series:
    """Position of each rating on the long-term scale: 0 = AAA/Aaa, 21 = D; NaN when unrated.

    Args:
        ratings: S&P/Fitch (``AA-``) or Moody's (``Aa3``) symbols; None, blank or unknown symbols
            count as unrated.

    Returns:
        A float64 series aligned with ``ratings``.
    """
    cleaned = ratings.astype("object").where(ratings.notna(), None)
    notches = [_NOTCH.get(r.strip()) if isinstance(r, str) else None for r in cleaned]
    return pd.Series(notches, index=ratings.index, dtype="float64")


def parse_schedule(text: str) -> HaircutSchedule:
    """Parse the CSV text of a schedule (format in the module docstring).

    Raises:
        HaircutScheduleError: On unknown columns, rules, settings, asset classes, issuer types or
            ratings, unparsable numbers, or an eligible cell without a haircut.
    """
    raw = pd.read_csv(
        io.StringIO(text), comment="#", dtype=str, keep_default_na=False, skipinitialspace=True
    )
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in SCHEDULE_COLUMNS if c not in raw.columns]
    if missing:
        raise HaircutScheduleError(
            f"haircut schedule: missing columns {missing}; expected {list(SCHEDULE_COLUMNS)}"
        )
    raw = raw.loc[:, list(SCHEDULE_COLUMNS)].astype(object).map(str.strip)
    unknown_rules = sorted(set(raw["rule"]) - {"setting", "haircut"})
    if unknown_rules:
        raise HaircutScheduleError(
            f"haircut schedule: unknown rule {unknown_rules}; expected 'setting' or 'haircut'"
        )
    settings = _settings(raw.loc[raw["rule"] == "setting"])
    rules = _rules(raw.loc[raw["rule"] == "haircut"].reset_index(drop=True))
    period = settings.get("reference_holding_period_days")
    buckets = settings.get("maturity_buckets", "upper_inclusive")
    if buckets not in ("upper_inclusive", "lower_inclusive"):
        raise HaircutScheduleError(
            f"haircut schedule: maturity_buckets {buckets!r}; "
            "expected 'upper_inclusive' or 'lower_inclusive'"
        )
    return HaircutSchedule(
        name=settings.get("name", "unnamed"),
        rules=rules,
        reference_holding_period_days=None if period is None else int(_number(period, "period")),
        fx_addon=_number(settings.get("fx_addon_pct", "0"), "fx_addon_pct") / 100.0,
        maturity_buckets=buckets,  # type: ignore[arg-type]
    )


def _settings(rows: pd.DataFrame) -> dict[str, str]:
    known = {"name", "reference_holding_period_days", "fx_addon_pct", "maturity_buckets"}
    unknown = sorted(set(rows["key"]) - known)
    if unknown:
        raise HaircutScheduleError(
            f"haircut schedule: unknown setting {unknown}; expected one of {sorted(known)}"
        )
    return dict(zip(rows["key"], rows["value"], strict=True))


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise HaircutScheduleError(f"haircut schedule: {what} {text!r} is not a number") from None


def _optional_numbers(column: pd.Series, what: str) -> pd.Series:
    parsed = pd.to_numeric(column.replace("", np.nan), errors="coerce").astype("float64")
    bad = column[(column != "") & parsed.isna()]
    if not bad.empty:
        raise HaircutScheduleError(
            f"haircut schedule: {what} {bad.tolist()} is not a number (rows {list(bad.index)})"
        )
    return parsed


def _notches(column: pd.Series, what: str) -> pd.Series:
    notches = rating_notch(column.replace("", None))
    bad = column[(column != "") & notches.isna()]
    if not bad.empty:
        raise HaircutScheduleError(
            f"haircut schedule: {what} {bad.tolist()} is not a rating; expected one of "
            f"{list(RATING_SCALE)} or Moody's equivalents"
        )
    return notches


def _split_values(column: pd.Series, allowed: tuple[str, ...], what: str) -> pd.Series:
    lists = column.map(lambda s: [v.strip() for v in s.split("|")] if s else [None])
    bad = sorted({v for vs in lists for v in vs if v is not None and v not in allowed})
    if bad:
        raise HaircutScheduleError(
            f"haircut schedule: unknown {what} {bad}; expected one of {list(allowed)}"
        )
    return lists


def _rules(rows: pd.DataFrame) -> pd.DataFrame:
    eligible_text = rows["eligible"].str.lower()
    if not eligible_text.isin(["", "true", "false"]).all():
        raise HaircutScheduleError(
            f"haircut schedule: eligible {sorted(set(eligible_text))}; "
            "expected true, false or blank"
        )
    haircut = _optional_numbers(rows["haircut_pct"], "haircut_pct") / 100.0
    eligible = eligible_text != "false"
    no_haircut = eligible & haircut.isna()
    if no_haircut.any():
        raise HaircutScheduleError(
            "haircut schedule: eligible cells without haircut_pct "
            f"({rows.loc[no_haircut, 'note'].tolist()}); give a haircut or set eligible=false"
        )
    cells = pd.DataFrame(
        {
            "order": np.arange(len(rows), dtype="int64"),
            "asset_class": _split_values(rows["asset_class"], ASSET_CLASSES, "asset_class"),
            "issuer_type": _split_values(rows["issuer_type"], ISSUER_TYPES, "issuer_type"),
            "best_notch": _notches(rows["rating_best"], "rating_best"),
            "worst_notch": _notches(rows["rating_worst"], "rating_worst"),
            "maturity_from": _optional_numbers(rows["maturity_from_years"], "maturity_from_years"),
            "maturity_to": _optional_numbers(rows["maturity_to_years"], "maturity_to_years"),
            "haircut": haircut.where(eligible),
            "eligible": eligible.astype(bool),
            "note": rows["note"],
        }
    )
    exploded = cells.explode("asset_class").explode("issuer_type")
    return exploded.astype({"asset_class": "object", "issuer_type": "object"}).reset_index(
        drop=True
    )


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


def residual_maturity_years(maturity_date: pd.Series, business_date: pd.Timestamp) -> pd.Series:
    """Years from ``business_date`` to each maturity (calendar days / 365.25); NaN when undated."""
    days = (pd.to_datetime(maturity_date) - business_day(business_date)).dt.days
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
    require_columns(
        instruments,
        ("instrument_id", "asset_class", "issuer_type", "rating", "maturity_date"),
        where="haircuts_for",
    )
    day = business_day(business_date)
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
    years = residual_maturity_years(inst["maturity_date"], day)
    # Perpetuals and equities have no maturity: they fall in the longest bucket or a bucketless row.
    inst["years"] = years.fillna(np.inf)
    matured = (inst["maturity_date"] < day).to_numpy()

    pairs = _candidate_pairs(inst, schedule.rules)
    same_class = pairs["issuer_type"].isna() | (pairs["issuer_type"] == pairs["inst_issuer_type"])
    pairs = pairs.loc[same_class]
    rating_ok = (pairs["best_notch"].isna() | (pairs["notch"] >= pairs["best_notch"])) & (
        pairs["worst_notch"].isna() | (pairs["notch"] <= pairs["worst_notch"])
    )
    if schedule.maturity_buckets == "upper_inclusive":
        above = pairs["years"] > pairs["maturity_from"]
        below = pairs["years"] <= pairs["maturity_to"]
    else:
        above = pairs["years"] >= pairs["maturity_from"]
        below = pairs["years"] < pairs["maturity_to"]
    maturity_ok = (pairs["maturity_from"].isna() | above) & (pairs["maturity_to"].isna() | below)

    accepting = pairs.loc[pairs["eligible"]]
    accepted = np.zeros(len(inst), dtype=bool)
    accepted[accepting["row"].unique().astype("int64")] = True
    # The floor is the worst rating any eligible row of the class accepts; a rating-free eligible
    # row (e.g. equities) means the class has no floor at all.
    floor = accepting.assign(worst=accepting["worst_notch"].fillna(np.inf)).groupby("row")["worst"]
    floor_notch = np.full(len(inst), np.nan)
    floor_max = floor.max()
    floor_notch[floor_max.index.to_numpy()] = floor_max.to_numpy()
    notch = inst["notch"].to_numpy()
    below_floor = accepted & np.isfinite(floor_notch) & ~(notch <= floor_notch)

    matches = pairs.loc[rating_ok & maturity_ok].sort_values(["row", "order"], kind="stable")
    first = matches.drop_duplicates("row", keep="first").set_index("row")
    cell_haircut = first["haircut"].reindex(inst["row"]).to_numpy()
    cell_eligible = first["eligible"].reindex(inst["row"]).to_numpy(dtype=object)
    cell_note = first["note"].reindex(inst["row"]).to_numpy(dtype=object)
    has_cell = pd.notna(cell_eligible)
    cell_says_no = has_cell & (cell_eligible != True)  # noqa: E712 (object array of bool/NaN)

    inst["cell_note"] = cell_note
    name = schedule.name

    def rating(rows: pd.DataFrame) -> pd.Series:
        return text(rows["rating"].where(rows["notch"].notna(), "unrated"))

    reason = first_reasons(
        inst,
        [
            (
                matured,
                lambda r: "matured: " + text(r["instrument_id"]) + " matured on "
                + text(r["maturity_date"].dt.strftime("%Y-%m-%d")),
            ),
            (
                ~accepted,
                lambda r: "asset_class_not_accepted: " + name + " accepts no "
                + text(r["asset_class"]) + " issued by " + text(r["issuer_type"]) + " issuers",
            ),
            (
                below_floor,
                lambda r: "rating_below_floor: " + text(r["instrument_id"]) + " (" + rating(r)
                + ") is below the " + name + " floor for " + text(r["asset_class"]),
            ),
            (
                cell_says_no,
                lambda r: "not_eligible: " + name + " lists " + text(r["cell_note"])
                + " as not eligible",
            ),
            (
                ~has_cell,
                lambda r: "no_schedule_cell: no " + name + " cell for " + text(r["instrument_id"])
                + " (" + text(r["asset_class"]) + ", " + rating(r) + ", "
                + text(r["years"].round(2)) + " years)",
            ),
        ],
    )  # fmt: skip
    eligible = pd.isna(reason)
    return pd.DataFrame(
        {
            "instrument_id": inst["instrument_id"].to_numpy(dtype=object),
            "base_haircut": np.where(eligible, cell_haircut, np.nan).astype("float64"),
            "eligible": eligible.astype(bool),
            # An explicit object series: pandas would otherwise infer a string dtype and turn the
            # eligible rows' None into NaN.
            "reason": pd.Series(reason, dtype="object"),
        }
    ).astype(HAIRCUT_DTYPES)


def _candidate_pairs(inst: pd.DataFrame, rules: pd.DataFrame) -> pd.DataFrame:
    """Every (instrument, rule) pair whose asset class agrees; issuer type is checked later."""
    inst_side = inst.loc[:, ["row", "asset_class", "issuer_type", "notch", "years"]].rename(
        columns={"issuer_type": "inst_issuer_type"}
    )
    specific = rules.loc[rules["asset_class"].notna()]
    any_class = rules.loc[rules["asset_class"].isna()].drop(columns="asset_class")
    return pd.concat(
        [
            inst_side.merge(specific, on="asset_class", how="inner"),
            inst_side.merge(any_class, how="cross"),
        ],
        ignore_index=True,
    )


def fx_addon(holding_period_days: Values, schedule: HaircutSchedule) -> Values:
    """The schedule's currency-mismatch haircut scaled to ``holding_period_days``.

    Basel's 8 % at 10 days is 8 % x sqrt(5 / 10) = 5.657 % at 5 days.
    """
    return scale_haircut(schedule.fx_addon, holding_period_days, schedule)
