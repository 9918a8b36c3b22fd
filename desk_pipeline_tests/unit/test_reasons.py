"""Reasons: messages joined in check order, worded only for the rows a check applies to."""

import numpy as np
import pandas as pd

from desk_pipeline.domain.reasons import first_reasons, join_reasons, text

FRAME = pd.DataFrame({"id": ["A", "B", "C"], "age": [1.0, np.nan, 9.0]})


def worded(prefix: str, seen: list[list[str]]):
    def message(rows: pd.DataFrame) -> pd.Series:
        seen.append(list(rows["id"]))
        return prefix + text(rows["id"]) + " aged " + text(rows["age"])

    return message


def test_every_applying_message_is_joined_in_check_order_and_only_applying_rows_are_worded():
    seen: list[list[str]] = []
    checks = [
        (np.array([True, False, True]), worded("first: ", seen)),
        (np.array([False, False, False]), worded("never: ", seen)),
        (np.array([True, True, False]), worded("second: ", seen)),
    ]
    assert list(join_reasons(FRAME, checks)) == [
        "first: A aged 1.0; second: A aged 1.0",
        "second: B aged none",
        "first: C aged 9.0",
    ]
    assert seen == [["A", "C"], ["A", "B"]]


def test_the_first_applying_check_decides_and_rows_without_one_get_none():
    seen: list[list[str]] = []
    checks = [
        (np.array([False, True, False]), worded("first: ", seen)),
        (np.array([False, True, True]), worded("second: ", seen)),
    ]
    assert list(first_reasons(FRAME, checks)) == [None, "first: B aged none", "second: C aged 9.0"]
    assert seen == [["B"], ["C"]]
