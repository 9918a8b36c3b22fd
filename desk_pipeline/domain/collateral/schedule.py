"""Collateral haircut schedules: the CSV format and its parsing into a ``HaircutSchedule``.

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
"""

import io
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from desk_pipeline.domain.collateral.ratings import RATING_SCALE, rating_notch
from desk_pipeline.domain.errors import DeskPipelineError
from desk_pipeline.domain.schema import ASSET_CLASSES, ISSUER_TYPES

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

MaturityBuckets = Literal["upper_inclusive", "lower_inclusive"]


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
