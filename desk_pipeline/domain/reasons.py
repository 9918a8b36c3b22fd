"""Reasons attached to rows: ``"<code>: <detail>"`` messages, worded only where they apply."""

from collections.abc import Callable, Iterable

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

    pandas' ``astype(str)`` keeps missing values missing, and a missing piece would turn a whole
    reason into NaN, i.e. silently into "no reason".
    """
    texts = ["none" if pd.isna(v) else str(v) for v in values.to_numpy(dtype=object)]
    return pd.Series(texts, index=values.index, dtype="object")
