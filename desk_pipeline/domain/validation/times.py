"""Kinds of time cell: ISO calendar dates and ISO 8601 instants, read strictly (``parsing``)."""

import dataclasses

import pandas as pd

from desk_pipeline.domain import parsing
from desk_pipeline.domain.validation.cells import Check, Received


@dataclasses.dataclass(frozen=True)
class Date:
    """An ISO calendar date ``YYYY-MM-DD`` in [earliest, latest), as a naive midnight.

    Typed dates are taken at their date. Codes ``bad_<f>``, ``<f>_out_of_range``; an optional
    date may be blank (NaT).
    """

    earliest: pd.Timestamp
    latest: pd.Timestamp
    optional: bool = False

    def read(self, cells: Received, field: str) -> tuple[pd.Series, list[Check]]:
        """See :meth:`~desk_pipeline.domain.validation.cells.Kind.read`."""
        values = cells.raw[field] if field in cells.raw.columns else None
        if values is not None and pd.api.types.is_datetime64_any_dtype(values):
            values = values.dt.tz_localize(None) if values.dt.tz is not None else values
            text = values.dt.strftime("%Y-%m-%d").where(values.notna(), "")
        else:
            text = cells.text(field)
        value, problem = parsing.parse_dates(text, self.earliest, self.latest)
        if self.optional:
            problem = problem.where(text != "", "")
        blank = "; blank = none" if self.optional else ""
        return value, [
            (
                problem == parsing.NOT_ISO,
                f"bad_{field}",
                f"{field} is not an ISO date (YYYY-MM-DD{blank})",
            ),
            (
                problem == parsing.OUT_OF_RANGE,
                f"{field}_out_of_range",
                f"{field} must be from {self.earliest:%Y-%m-%d} up to, not including, "
                f"{self.latest:%Y-%m-%d}",
            ),
        ]


@dataclasses.dataclass(frozen=True)
class Instant:
    """An ISO 8601 date-time in [earliest, latest), UTC when it has no offset.

    Kept to the microsecond (see ``parsing.parse_instants``). Codes ``bad_<f>``,
    ``<f>_without_time``, ``<f>_out_of_range``, ``<f>_too_precise``.
    """

    earliest: pd.Timestamp
    latest: pd.Timestamp

    def problems(self, field: str) -> dict[str, tuple[str, str]]:
        """Per parsing problem, its ``(reason_code, reason)``."""
        return {
            parsing.NOT_ISO: (
                f"bad_{field}",
                f"{field} is not an ISO 8601 date-time (YYYY-MM-DDThh:mm[:ss[.fraction]]"
                f"[Z|±hh[:mm]], at most {parsing.MAX_TEXT_LENGTH} characters)",
            ),
            parsing.DATE_ONLY: (
                f"{field}_without_time",
                f"{field} has no time of day: a date, a year-month or a year alone is not a "
                f"{field.replace('_', ' ')}",
            ),
            parsing.OUT_OF_RANGE: (
                f"{field}_out_of_range",
                f"{field} must be from {self.earliest.isoformat()} up to, not including, "
                f"{self.latest.isoformat()}",
            ),
            parsing.TOO_PRECISE: (
                f"{field}_too_precise",
                f"{field} has non-zero digits below the microsecond: the desk keeps times to "
                "the microsecond and would otherwise order such rows by id, not by time",
            ),
        }

    def read(self, cells: Received, field: str) -> tuple[pd.Series, list[Check]]:
        """See :meth:`~desk_pipeline.domain.validation.cells.Kind.read`."""
        value, problem = parsing.parse_instants(cells.text(field), self.earliest, self.latest)
        return value, [
            (problem == kind, code, reason) for kind, (code, reason) in self.problems(field).items()
        ]
