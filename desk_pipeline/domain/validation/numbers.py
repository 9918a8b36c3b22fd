"""Kinds of numeric cell: finite decimal numbers (quantities, prices, rates) and whole numbers."""

import dataclasses

import numpy as np
import pandas as pd

from desk_pipeline.domain import parsing
from desk_pipeline.domain.validation.cells import Check, Received


@dataclasses.dataclass(frozen=True)
class Number:
    """A finite decimal number, float64.

    Codes ``<f>_not_numeric`` (also blank), ``<f>_not_finite``, then, as declared:
    ``<f>_not_positive``, ``<f>_out_of_range``, ``<f>_too_precise`` and ``zero_<f>``.
    """

    positive: bool = False
    at_most: float | None = None
    between: tuple[float, float] | None = None
    max_abs: float | None = None
    decimals: int | None = None
    nonzero: bool = False

    def read(self, cells: Received, field: str) -> tuple[pd.Series, list[Check]]:
        """See :meth:`~desk_pipeline.domain.validation.cells.Kind.read`."""
        value = cells.numbers(field)
        checks: list[Check] = [
            (value.isna(), f"{field}_not_numeric", f"{field} is not a number"),
            (value.abs() == np.inf, f"{field}_not_finite", f"{field} is not finite"),
        ]
        if self.positive:
            checks.append(
                (value <= 0, f"{field}_not_positive", f"{field} must be greater than zero")
            )
        out_of_range = f"{field}_out_of_range"
        if self.at_most is not None:
            checks.append(
                (value > self.at_most, out_of_range, f"{field} must be at most {self.at_most:g}")
            )
        if self.between is not None:
            low, high = self.between
            checks.append(
                (
                    (value < low) | (value > high),
                    out_of_range,
                    f"{field} must be from {low:g} to {high:g}",
                )
            )
        if self.max_abs is not None:
            checks.append(
                (
                    value.abs() > self.max_abs,
                    out_of_range,
                    f"{field} must be between -{self.max_abs:g} and {self.max_abs:g}",
                )
            )
        if self.decimals is not None:
            places = pd.Series(parsing.decimal_places(cells.text(field)), index=cells.index)
            checks.append(
                (
                    places > self.decimals,
                    f"{field}_too_precise",
                    f"{field} has more than {self.decimals} decimal places (or is written in "
                    f"more than {parsing.MAX_TEXT_LENGTH} characters)",
                )
            )
        if self.nonzero:
            checks.append((value == 0, f"zero_{field}", f"{field} is zero"))
        return value, checks


@dataclasses.dataclass(frozen=True)
class Whole:
    """A whole number in [low, high], blank = ``default``; one reason code for any failure."""

    low: int
    high: int
    default: int
    code: str
    reason: str

    def read(self, cells: Received, field: str) -> tuple[pd.Series, list[Check]]:
        """See :meth:`~desk_pipeline.domain.validation.cells.Kind.read`."""
        value = cells.numbers(field).mask(cells.text(field) == "", float(self.default))
        failed = (
            value.isna()
            | ~((value >= self.low) & (value <= self.high))
            | (value.fillna(0) % 1 != 0)
        )
        return value, [(failed, self.code, self.reason)]
