"""Reasons attached to rows: ``"<code>: <detail>"`` messages, worded only where they apply.

Every value a reason quotes goes through :func:`text` (ids, codes, dates) or :func:`number_text`
(numbers), so that no message carries a float's repr (``-200000.0``, ``1e-06``, ``1.0``).
"""

from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

import numpy as np
import pandas as pd

# A check: which rows it applies to, and how to word it for those rows.
Check = tuple[np.ndarray, Callable[[pd.DataFrame], pd.Series]]


def join_reasons(frame: pd.DataFrame, checks: Iterable[Check]) -> np.ndarray:
    """Per row of ``frame``, the messages of the checks that apply to it; "" where none does.

    A message is worded only for the rows its check applies to: few rows fail, and formatting
    text for every row of every day was most of a backfill's ranking time.
    """
    reason = np.full(len(frame), "", dtype=object)
    for applies, message in checks:
        if not applies.any():
            continue
        before = reason[applies]
        separator = np.where(before == "", "", "; ").astype(object)
        worded = message(frame.loc[applies]).to_numpy(dtype=object)
        reason[applies] = before + separator + worded
    return reason


def first_reasons(frame: pd.DataFrame, checks: Iterable[Check]) -> np.ndarray:
    """Per row of ``frame``, the message of the first check that applies; None where none does."""
    reason = np.full(len(frame), None, dtype=object)
    undecided = np.ones(len(frame), dtype=bool)
    for applies, message in checks:
        rows = applies & undecided
        if rows.any():
            reason[rows] = message(frame.loc[rows]).to_numpy(dtype=object)
            undecided &= ~rows
    return reason


def text(values: pd.Series) -> pd.Series:
    """Values as Python strings in an object series, ``none`` for missing ones.

    For ids, codes and dates; numbers go through :func:`number_text`. pandas' ``astype(str)``
    keeps missing values missing, and a missing piece would turn a whole reason into NaN, i.e.
    silently into "no reason".
    """
    texts = ["none" if pd.isna(v) else str(v) for v in values.to_numpy(dtype=object)]
    return pd.Series(texts, index=values.index, dtype="object")


def number_text(values: pd.Series, decimals: int, *, trim: bool = False) -> pd.Series:
    """Numbers as a trader reads them, in an object series: ``-1,234,567.89``, never ``1e-05``.

    Each value is rounded to ``decimals`` places (half to even) from the shortest digits that
    read back as it (Python's ``repr``, what ``--json`` and the API write) and written with
    thousands separators, never in exponent notation: float noise beyond ``decimals`` never
    shows, and no digit the float does not carry is made up (six places of a quantity above
    2**33 units, where the float stops telling micro-units apart, did). With ``trim``,
    trailing zeros and a bare point are dropped: exact decimals such as quantities read
    ``-200,000`` or ``0.000001``. A value that rounds to zero reads without a sign. Missing
    values read ``none``, as in :func:`text`; infinities ``inf``.

    Args:
        values: numbers (float, int or nullable int); not modified.
        decimals: places after the point, 0 or more.
        trim: drop trailing zeros after the point.
    """
    objects = values.to_numpy(dtype=object)
    floats = pd.to_numeric(values).to_numpy(dtype=np.float64, na_value=np.nan)
    # Whole numbers a float holds exactly (most quantities, every age in days) need no
    # rounding: written as integers, a tenth of the cost of Decimal's, which was a tenth of a
    # backfill's ranking time.
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(floats) & (np.abs(floats) < 2**53) & (floats == np.trunc(floats))
    places = "" if trim or decimals == 0 else "." + "0" * decimals
    texts = np.empty(len(objects), dtype=object)
    texts[whole] = [f"{n:,}{places}" for n in floats[whole].astype(np.int64).tolist()]
    texts[~whole] = [_number(v, decimals, trim) for v in objects[~whole]]
    return pd.Series(texts, index=values.index, dtype="object")


def _number(value: Any, decimals: int, trim: bool) -> str:
    """One value of :func:`number_text`."""
    if pd.isna(value):
        return "none"
    if np.isinf(value):
        return "inf" if value > 0 else "-inf"
    digits = Decimal(repr(float(value))) if isinstance(value, float) else Decimal(int(value))
    with localcontext() as context:
        context.prec = 400  # every digit of the largest float, and the places after it
        rounded = digits.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN)
    worded = f"{rounded:,f}"
    if trim and "." in worded:
        worded = worded.rstrip("0").rstrip(".")
    # "-0.00" (a tiny negative, or -0.0) says a sign of nothing.
    return worded[1:] if worded.startswith("-") and worded.strip("-0.,") == "" else worded
