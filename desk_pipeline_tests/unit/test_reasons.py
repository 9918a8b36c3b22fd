"""Reasons: messages joined in check order, worded only for the rows a check applies to."""

from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from desk_pipeline.domain.reasons import first_reasons, join_reasons, number_text, text

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


# --- numbers in reasons: number_text against Decimal, the plain reference ------------------------


def reference_number(value: float | int, decimals: int, trim: bool) -> str:
    """The float's shortest round-trip digits (str) rounded half to even by Decimal, grouped."""
    with localcontext() as context:
        context.prec = 1_000  # enough for every digit of the largest float
        exact = Decimal(str(value)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN)
        worded = f"{abs(exact) if exact == 0 else exact:,f}"
    return worded.rstrip("0").rstrip(".") if trim and "." in worded else worded


@given(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=0, max_value=6),
    st.booleans(),
)
@example(-200_000.0, 6, True)  # a quantity: "-200000.0" before
@example(-1e-06, 6, True)  # a micro-unit short: "-1e-06" before
@example(1.0041, 2, False)  # residual years: "1.0" before
@example(-0.001, 2, False)  # rounds to zero: no sign
@example(0.30000000000000004, 6, True)  # 0.1 + 0.2: no float noise
@example(-99_999_999_999.99998, 6, True)  # 100 x -999999999.999999: "-...999985" made up
@example(2.675, 2, False)  # reads 2.68, as written; its binary value is 2.67499...
def test_a_number_in_a_reason_is_the_value_rounded_to_its_places_and_grouped_by_thousands(
    value: float, decimals: int, trim: bool
) -> None:
    (got,) = number_text(pd.Series([value]), decimals, trim=trim)
    assert got == reference_number(value, decimals, trim)
    assert "e" not in got and "E" not in got
    assert len(got.partition(".")[2]) <= decimals


@given(
    st.lists(
        st.one_of(
            st.integers(min_value=-(2**63), max_value=2**63 - 1),
            st.integers(min_value=-(2**60), max_value=2**60).map(float),
            st.floats(allow_nan=False, allow_infinity=False),
        ),
        max_size=20,
    ),
    st.integers(min_value=0, max_value=8),
    st.booleans(),
    st.sampled_from(["float64", "Int64", "object"]),
)
@example([-0.0, 2.0**53, 2.0**53 + 2, -(2.0**53) - 2], 2, False, "float64")
@example([2**53 + 1, -(2**63)], 6, True, "Int64")  # whole beyond what a float holds exactly
def test_whole_numbers_read_as_the_reference_in_any_series_of_numbers(
    values: list[float | int], decimals: int, trim: bool, dtype: str
) -> None:
    # Whole numbers take a shorter path than the rest: a series mixing both, of each dtype a
    # reason reads, reads as the reference number by number.
    if dtype == "Int64":
        values = [int(v) for v in values if float(v).is_integer() and abs(v) < 2**63]
    elif dtype == "float64":
        values = [float(v) for v in values]
    series = pd.Series(values, dtype=dtype if values else "float64")
    got = number_text(series, decimals, trim=trim).tolist()
    assert got == [reference_number(v, decimals, trim) for v in values]


@pytest.mark.parametrize(
    ("values", "decimals", "trim", "expected"),
    [
        ([-200_000.0, -1e-06, 1_234_567.891234, 0.1 + 0.2], 6, True,
         ["-200,000", "-0.000001", "1,234,567.891234", "0.3"]),
        # As --json writes them: no digit beyond what the float carries.
        ([-99_999_999_999.99998, -11_999_999_999.999989], 6, True,
         ["-99,999,999,999.99998", "-11,999,999,999.999989"]),
        ([1.0041, 1.29, 1234.5], 2, False, ["1.00", "1.29", "1,234.50"]),
        ([np.nan, np.inf, -np.inf], 2, False, ["none", "inf", "-inf"]),
    ],
)  # fmt: skip
def test_numbers_read_as_a_trader_writes_them(
    values: list[float], decimals: int, trim: bool, expected: list[str]
) -> None:
    assert number_text(pd.Series(values), decimals, trim=trim).tolist() == expected


def test_missing_whole_numbers_read_none_and_the_index_is_kept() -> None:
    ages = pd.Series([7, pd.NA, 1234], dtype="Int64", index=[5, 6, 7])
    got = number_text(ages, 0)
    assert got.tolist() == ["7", "none", "1,234"]
    assert got.index.tolist() == [5, 6, 7]
