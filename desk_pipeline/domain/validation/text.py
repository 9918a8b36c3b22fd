"""Kinds of text cell: identifiers, free text and choices from a vocabulary."""

import dataclasses
from collections.abc import Callable, Sequence

import pandas as pd

from desk_pipeline.domain.validation.cells import (
    Check,
    Received,
    blank_to_none,
    control_check,
    format_check,
)

MAX_ID_LENGTH = 64


@dataclasses.dataclass(frozen=True)
class Id:
    """An identifier: not blank, bounded in characters (and bytes), nothing that does not show.

    Codes ``empty_<f>``, ``<f>_too_long`` (over ``max_chars`` characters, or ``max_bytes`` bytes
    in UTF-8 when given), ``bad_<f>`` (a control character, line separator or unpaired surrogate,
    else a character that does not show as itself or a value not in NFC, the reason naming it:
    see ``cells.format_check``).
    """

    max_chars: int = MAX_ID_LENGTH
    max_bytes: int | None = None
    why_bytes: str = ""

    def read(self, cells: Received, field: str) -> tuple[pd.Series, list[Check]]:
        """See :meth:`~desk_pipeline.domain.validation.cells.Kind.read`."""
        value = cells.text(field)
        checks = [
            (value == "", f"empty_{field}", f"{field} is empty"),
            (
                value.str.len() > self.max_chars,
                f"{field}_too_long",
                f"{field} is longer than {self.max_chars} characters",
            ),
            control_check(value, field),
            format_check(value, field),
        ]
        if self.max_bytes is not None:
            encoded = value.str.encode("utf-8", errors="surrogatepass")
            # pandas-stubs declares .str.len() for str elements only; pandas measures bytes too.
            size = encoded.str.len()  # type: ignore[misc]
            checks.append(
                (
                    size > self.max_bytes,
                    f"{field}_too_long",
                    f"{field} is longer than {self.max_bytes} bytes in UTF-8{self.why_bytes}",
                )
            )
        return value, checks


@dataclasses.dataclass(frozen=True)
class Text:
    """Free text, optional (blank = None): no control characters (``bad_<f>``).

    Unicode format characters are kept: a name may need a zero-width (non-)joiner (Persian,
    Indic scripts, emoji sequences) or a soft hyphen, and no one acts on a book or an
    instrument by its name.
    """

    def read(self, cells: Received, field: str) -> tuple[pd.Series, list[Check]]:
        """See :meth:`~desk_pipeline.domain.validation.cells.Kind.read`."""
        value = cells.text(field)
        return blank_to_none(value), [control_check(value, field)]


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of a vocabulary, read in ``case`` ("lower", "upper" or "" = as received).

    Args:
        accepts: which (case-folded, non-blank) values are in the vocabulary.
        code: the reason code of any other value.
        reason: its reason.
        blank: what a blank cell means: ``None`` = a missing value (kept as None), ``""`` = not
            allowed (fails like any other value), any other text = that default.
    """

    accepts: Callable[[pd.Series], pd.Series]
    code: str
    reason: str
    case: str = ""
    blank: str | None = ""

    def read(self, cells: Received, field: str) -> tuple[pd.Series, list[Check]]:
        """See :meth:`~desk_pipeline.domain.validation.cells.Kind.read`."""
        value = cells.text(field)
        if self.case == "lower":
            value = value.str.lower()
        elif self.case == "upper":
            value = value.str.upper()
        blank = value == ""
        if self.blank:
            value = value.mask(blank, self.blank)
            blank = value == ""
        failed = ~self.accepts(value).fillna(False).astype(bool)
        if self.blank is None:
            failed &= ~blank
            value = blank_to_none(value)
        return value, [(failed, self.code, self.reason)]


def one_of(choices: Sequence[str]) -> Callable[[pd.Series], pd.Series]:
    """``Choice.accepts`` for a closed list."""
    return lambda values: values.isin(choices)


def currency(field: str) -> Choice:
    """An ISO 4217 code, any case (kept in upper case): ``bad_<f>``."""
    return Choice(
        accepts=lambda values: values.str.fullmatch(r"[A-Z]{3}"),
        code=f"bad_{field}",
        reason=f"{field} must be a three-letter ISO 4217 code",
        case="upper",
    )
