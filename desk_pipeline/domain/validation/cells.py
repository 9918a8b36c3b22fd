"""Received cells as text or numbers, the protocol of a kind of cell, the character rules."""

import re
import unicodedata
from typing import Protocol

import numpy as np
import pandas as pd

# Control characters, C0, DEL and C1 (NUL above all: PostgreSQL refuses it in text; a C1 shows as
# nothing, NEL U+0085 breaks lines and CSI U+009B opens a terminal escape) and lone surrogates (no
# database encodes them; a CSV cannot hold them, another source can): never in kept text.
CONTROL_CHARACTERS = r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]"

# Rows failing a check (True = fails), its reason code and its reason: one for every row, or one
# per row (a Series aligned with the rows) where the reason names the row's own value.
Check = tuple[pd.Series, str, str | pd.Series]


class Received:
    """Received rows, each column read as text (or numbers) once however many rules read it."""

    def __init__(self, raw: pd.DataFrame) -> None:
        self.raw = raw
        self.index = raw.index
        self._texts: dict[str, pd.Series] = {}

    def text(self, column: str) -> pd.Series:
        """The column as stripped strings ("" where missing); an absent column reads as ""."""
        if column not in self._texts:
            self._texts[column] = text_of(self.raw, column)
        return self._texts[column]

    def numbers(self, column: str) -> pd.Series:
        """The column as float64; NaN where missing, absent or not a number.

        Typed numbers are taken as they are, text is read as a decimal number; booleans are not
        numbers.
        """
        if column not in self.raw.columns:
            return pd.Series(np.nan, index=self.index, dtype="float64")
        values = self.raw[column]
        typed = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        return pd.to_numeric(values if typed else self.text(column), errors="coerce").astype(
            "float64"
        )


class Kind(Protocol):
    """A kind of cell: reads a received column into typed values and the checks they fail."""

    def read(self, cells: Received, field: str) -> tuple[pd.Series, list[Check]]:
        """``(values, checks)``: values with the rows' index, checks in order of precedence."""
        ...


def text_of(raw: pd.DataFrame, column: str) -> pd.Series:
    """The column as stripped strings ("" where missing); an absent column reads as all-empty."""
    if column not in raw.columns:
        return pd.Series("", index=raw.index, dtype="object")
    values = raw[column].astype("object")
    return values.where(values.notna(), "").astype(str).str.strip()


def blank_to_none(values: pd.Series) -> pd.Series:
    """Text with "" as None (a missing optional value), object dtype."""
    return values.astype("object").where(values != "", None)


def control_check(value: pd.Series, field: str) -> Check:
    """Rows of ``value`` (str) holding a control character or an unpaired surrogate: ``bad_<f>``."""
    return (
        value.str.contains(CONTROL_CHARACTERS, regex=True),
        f"bad_{field}",
        f"{field} contains control characters or unpaired surrogates",
    )


def format_check(value: pd.Series, field: str) -> Check:
    """Rows of ``value`` (str) holding a Unicode format character (category Cf): ``bad_<f>``.

    Format characters do not show: zero-width space and joiners (U+200B-U+200D), word joiner
    (U+2060), BOM (U+FEFF), soft hyphen (U+00AD); bidi embeddings, overrides and isolates
    (U+202A-U+202E, U+2066-U+2069) reorder what follows. An id holding one is another id that
    looks the same (BOOK, U+200B, 1 is not BOOK1), or looks like a third one. The reason is per
    row and names the row's first such character, e.g. ``book_id holds an invisible format
    character U+200B``. Cf is read from ``unicodedata`` of the running Python, not a copied table.
    """
    # No ASCII character is Cf: only non-ASCII values are looked at, each distinct character once.
    wide = value[value.str.contains(r"[^\x00-\x7f]", regex=True)]
    formats = sorted(c for c in set("".join(wide)) if unicodedata.category(c) == "Cf")
    failed = pd.Series(False, index=value.index)
    reason = pd.Series("", index=value.index, dtype="object")
    if formats:
        first = wide.str.extract(f"([{re.escape(''.join(formats))}])", expand=False).dropna()
        failed.loc[first.index] = True
        reason.loc[first.index] = first.map(
            lambda c: f"{field} holds an invisible format character U+{ord(c):04X}"
        )
    return failed, f"bad_{field}", reason
