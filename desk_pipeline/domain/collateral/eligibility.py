"""Collateral eligibility: which holdings are disqualified, and the reason given for each."""

import numpy as np
import pandas as pd

from desk_pipeline.domain.marks import stale_price_reason
from desk_pipeline.domain.precision import QUANTITY_DECIMALS
from desk_pipeline.domain.reasons import Check, join_reasons, number_text, text


def eligibility(items: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Whether each holding may be pledged, and why not (or what to watch) in the desk's words.

    ARCHITECTURE.md: ineligible collateral is reported with its reason, never silently dropped.

    Args:
        items: one row per held (book, instrument) with ``book_id``, ``instrument_id``,
            ``quantity`` (float64, signed units), ``known`` (bool: the instrument is in the
            reference data), ``cell_reason`` (the schedule's reason, None when its cell accepts
            the instrument), ``price`` (float64, NaN when unmarked), ``price_date``,
            ``price_age_days``, ``stale_price`` (``marks.marks_on``), ``fx_rate`` (float64, NaN
            when missing), ``currency``, ``base_currency`` and ``day`` (the ranking day, naive
            midnight, quoted in the messages).

    Returns:
        ``eligible`` (bool array: no disqualifying check applies) and ``reason`` (object array:
        ``"; "``-joined ``"<code>: <detail>"`` parts in the order of :func:`disqualifying_checks`
        then the ``stale_price`` warning; "" where none applies), both aligned with ``items``.
    """
    disqualifying = disqualifying_checks(items)
    reason = join_reasons(items, [*disqualifying, stale_price_check(items)])
    eligible = ~np.any([applies for applies, _ in disqualifying], axis=0)
    return eligible, reason


def disqualifying_checks(items: pd.DataFrame) -> list[Check]:
    """The checks that make a holding ineligible, the deciding one first.

    ``unknown_instrument``, ``short_position`` (a short holding cannot be pledged), the haircut
    schedule's own reason (``matured``, ``asset_class_not_accepted``, ``rating_below_floor``,
    ``not_eligible``, ``no_schedule_cell``), ``no_price`` and ``no_fx_rate``. An unknown
    instrument has no schedule cell and no currency, so those two checks skip it.

    Args:
        items: as for :func:`eligibility`.

    Returns:
        ``(applies, message)`` pairs: a bool array aligned with ``items`` and the wording of the
        rows it applies to.
    """
    known = items["known"].to_numpy(dtype=bool)
    return [
        (
            ~known,
            lambda rows: "unknown_instrument: " + text(rows["instrument_id"])
            + " is not in the instrument reference data",
        ),
        (
            items["quantity"].to_numpy(dtype="float64") < 0,
            lambda rows: "short_position: " + text(rows["book_id"]) + " holds "
            + number_text(rows["quantity"], QUANTITY_DECIMALS, trim=True) + " of "
            + text(rows["instrument_id"]),
        ),
        (known & items["cell_reason"].notna().to_numpy(), lambda rows: text(rows["cell_reason"])),
        (
            np.isnan(items["price"].to_numpy(dtype="float64")),
            lambda rows: "no_price: no price for " + text(rows["instrument_id"])
            + " on or before " + _date(rows),
        ),
        (
            known & np.isnan(items["fx_rate"].to_numpy(dtype="float64")),
            lambda rows: "no_fx_rate: no " + text(rows["currency"]) + "/"
            + text(rows["base_currency"]) + " rate on or before " + _date(rows),
        ),
    ]  # fmt: skip


def stale_price_check(items: pd.DataFrame) -> Check:
    """A warning, not a disqualification: the mark is stale (``marks.stale``).

    Args:
        items: ``stale_price``, ``price_date`` and ``price_age_days`` (calendar days, <NA> when
            unmarked) as ``marks.marks_on`` returns them, and ``day``, quoted in the message.
    """
    return (
        items["stale_price"].to_numpy(dtype=bool),
        lambda rows: stale_price_reason(rows, _date(rows)),
    )  # fmt: skip


def _date(rows: pd.DataFrame) -> pd.Series:
    """Each row's ranking day as YYYY-MM-DD text."""
    return rows["day"].dt.strftime("%Y-%m-%d")
