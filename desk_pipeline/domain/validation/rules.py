"""The framework core: a kind of input's rule set, and ``validate``, which applies it to rows."""

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from desk_pipeline.domain.schema import QUARANTINE_DTYPES, conform, empty_frame
from desk_pipeline.domain.validation.cells import Check, Kind, Received
from desk_pipeline.domain.validation.quarantine import (
    UNREADABLE_COLUMN,
    quarantine_rows,
    quarantine_whole_source,
)


@dataclasses.dataclass(frozen=True)
class Column:
    """A received column, its kind of cell and whether a file must have it."""

    name: str
    kind: Kind
    required: bool = True


@dataclasses.dataclass(frozen=True)
class RuleSet:
    """The rules of one kind of input, declared once.

    Attributes:
        columns: the columns read, in order of precedence of their checks.
        dtypes: the valid frame's columns and dtypes (each a column's values).
        key: the columns that identify a row; a repeat with other content conflicts.
        keep_exact_repeats: keep an exact repeat among the valid rows (else drop it).
        conflicts: per valid row (in order), whether it repeats an earlier key with other
            content; by default, any difference of the typed values counts.
    """

    columns: tuple[Column, ...]
    dtypes: Mapping[str, str]
    key: tuple[str, ...]
    keep_exact_repeats: bool = False
    conflicts: Callable[[pd.DataFrame], np.ndarray] | None = None

    @property
    def required(self) -> tuple[str, ...]:
        """The columns a file must have."""
        return tuple(c.name for c in self.columns if c.required)


def validate(
    raw: pd.DataFrame, rules: RuleSet, *, source: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split received rows into valid typed rows and quarantine rows, losing none.

    Args:
        raw: rows as received (strings, or typed values from a typed source); the index is the
            1-based row number. Not modified.
        rules: the kind of input's rule set.
        source: where the rows came from, recorded on every quarantine row.

    Returns:
        ``(valid, quarantine)``: ``rules.dtypes`` and QUARANTINE_DTYPES (row_number, reason_code,
        reason, the row as received in JSON). ``valid`` keeps ``raw``'s index, the row numbers,
        so that a row refused later (a resend conflicting with a stored version) is quarantined
        under its own row. ``len(valid) + len(quarantine) == len(raw)`` unless
        exact repeats are dropped (``rules.keep_exact_repeats`` false), or the input is one
        unreadable-file row (one whole-file quarantine row, row_number 0).
    """
    named = raw.rename(columns=lambda c: str(c).strip().lower())
    rejected = _rejected_whole(raw, named, rules, source)
    if rejected is not None:
        return empty_frame(rules.dtypes), rejected
    values, checks = _read_columns(named, rules)
    code, reason = first_failures(checks, named.index)
    bad = (code != "").to_numpy()
    valid = _typed_rows(values, named.index, bad, rules)
    repeated, conflicting = _repeats(valid, rules)
    dropped = conflicting if rules.keep_exact_repeats else repeated
    quarantine = pd.concat(
        [
            quarantine_rows(named.loc[bad], source, code[bad], reason[bad]),
            quarantine_rows(
                named.loc[valid.index[conflicting]],
                source,
                "conflicting_duplicate",
                f"the same {' and '.join(rules.key)} appears earlier with different content",
            ),
        ]
    )
    return valid.loc[~dropped], conform(quarantine, QUARANTINE_DTYPES)


def repeated_names(names: Iterable[object]) -> list[str]:
    """The column names given more than once, compared stripped and in lower case, sorted.

    Blank names are not compared: no rule reads a column without a name, and a file may well
    leave several blank.
    """
    named = pd.Index([str(n).strip().lower() for n in names])
    return sorted(set(named[named.duplicated() & (named != "")]))


def repeated_names_problem(repeated: Sequence[str]) -> str:
    """The reason an input with repeated column names (:func:`repeated_names`) is refused."""
    return f"column names repeat (case-insensitive): {list(repeated)}"


def _rejected_whole(
    received: pd.DataFrame, named: pd.DataFrame, rules: RuleSet, source: str
) -> pd.DataFrame | None:
    """The quarantine rows of an input rejected as a whole, or None when its rows can be read.

    Args:
        received: rows under the column names as received.
        named: the same rows, column names stripped and in lower case.
        rules: the kind of input's rule set (its required columns).
        source: recorded on every quarantine row.

    Returns:
        QUARANTINE_DTYPES: one ``unreadable_file`` row (row_number 0) for a file the source
        could not read; else every row as ``repeated_columns`` (kept under the names received,
        so that no cell is lost) or ``missing_columns``; None when neither applies.
    """
    if UNREADABLE_COLUMN in received.columns:
        problem = str(received[UNREADABLE_COLUMN].iloc[0])
        return quarantine_whole_source(source, "unreadable_file", problem)
    repeated = repeated_names(named.columns)
    if repeated:
        problem = repeated_names_problem(repeated)
        rows = quarantine_rows(received, source, "repeated_columns", problem)
        return conform(rows, QUARANTINE_DTYPES)
    missing = [c for c in rules.required if c not in named.columns]
    if missing:
        problem = f"missing required columns {missing}; got {list(named.columns)}"
        rows = quarantine_rows(named, source, "missing_columns", problem)
        return conform(rows, QUARANTINE_DTYPES)
    return None


def _read_columns(named: pd.DataFrame, rules: RuleSet) -> tuple[dict[str, pd.Series], list[Check]]:
    """Each rule-set column read by its kind of cell.

    Returns:
        ``(values, checks)``: per column name, its values (the kind's dtype, ``named``'s index);
        the checks of all columns, in order of precedence (column order, then each kind's).
    """
    cells = Received(named)
    values: dict[str, pd.Series] = {}
    checks: list[Check] = []
    for column in rules.columns:
        values[column.name], column_checks = column.kind.read(cells, column.name)
        checks += column_checks
    return values, checks


def _typed_rows(
    values: Mapping[str, pd.Series], index: pd.Index, bad: np.ndarray, rules: RuleSet
) -> pd.DataFrame:
    """The rows that pass every check, as ``rules.dtypes``, keeping their received row numbers.

    Args:
        values: per column, its values read (aligned with ``index``).
        index: the received row numbers.
        bad: bool per row, True where a check fails.
        rules: the valid frame's columns and dtypes.
    """
    valid = conform(pd.DataFrame({c: values[c] for c in rules.dtypes}).loc[~bad], rules.dtypes)
    valid.index = index[~bad]
    return valid


def _repeats(valid: pd.DataFrame, rules: RuleSet) -> tuple[np.ndarray, np.ndarray]:
    """Per valid row (bool arrays): ``(repeated, conflicting)``.

    ``repeated``: its key appears in an earlier valid row; ``conflicting``: it does so with other
    content (``rules.conflicts`` when given, else any difference of the typed values).
    """
    repeated: np.ndarray = valid.duplicated(list(rules.key), keep="first").to_numpy()
    if rules.conflicts is not None:
        return repeated, rules.conflicts(valid)
    return repeated, repeated & ~valid.duplicated(keep="first").to_numpy()


def first_failures(checks: Sequence[Check], index: pd.Index) -> tuple[pd.Series, pd.Series]:
    """Per row, the first failing check's reason code and reason; "" where all pass.

    A check that cannot say (a missing value in its mask) fails the row.
    """
    code = pd.Series("", index=index, dtype="object")
    reason = pd.Series("", index=index, dtype="object")
    for failed, reason_code, message in reversed(checks):
        hit = failed.fillna(True).to_numpy(dtype=bool)
        code = code.mask(hit, reason_code)
        reason = reason.mask(hit, message)
    return code, reason
