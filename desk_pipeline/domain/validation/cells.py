"""Received cells as text or numbers, the protocol of a kind of cell, the character rules."""

import re
import unicodedata
from typing import Protocol

import numpy as np
import pandas as pd

# Control characters, C0, DEL and C1 (NUL above all: PostgreSQL refuses it in text; a C1 shows as
# nothing, NEL U+0085 breaks lines and CSI U+009B opens a terminal escape), the line and paragraph
# separators U+2028 and U+2029 (categories Zl, Zp: they break lines as NEL does, in Python's
# splitlines, JavaScript and log readers) and lone surrogates (no database encodes them; a CSV
# cannot hold them, another source can): never in kept text.
CONTROL_CHARACTERS = r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]"

# Default-ignorable code points (Unicode DerivedCoreProperties, Default_Ignorable_Code_Point) that
# are neither Cf nor unassigned, which unicodedata cannot tell: the combining grapheme joiner,
# the Hangul fillers, two Khmer inherent vowels and the variation selectors; and the blank braille
# pattern U+2800 (category So), which shows as a space. They show as nothing.
_IGNORABLE = re.compile(
    # Raw: re reads the escapes, so the source's constants stay ASCII (no character of them is
    # ever written to a terminal; test_terminal_encoding checks every literal that could be).
    r"[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180d\u180f\u2800\u3164\ufe00-\ufe0f\uffa0"
    r"\U000e0100-\U000e01ef]"
)

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
    """Rows of ``value`` (str) holding a control or line-breaking character: ``bad_<f>``.

    CONTROL_CHARACTERS: C0, DEL, C1, U+2028, U+2029 and unpaired surrogates.
    """
    return (
        value.str.contains(CONTROL_CHARACTERS, regex=True),
        f"bad_{field}",
        f"{field} contains control characters, line separators or unpaired surrogates",
    )


def hidden(character: str) -> str:
    """What ``character`` (one, not ASCII) is when it does not show as itself, else ``""``.

    ``an invisible format character`` (category Cf), ``an invisible character`` (another
    default-ignorable one: a variation selector, a Hangul filler, U+034F), ``a space other than
    U+0020`` (Zs, e.g. no-break space U+00A0, ideographic space U+3000), ``an unassigned code
    point or noncharacter`` (Cn, e.g. U+FFFE) or ``a private-use character`` (Co): each shows as
    nothing, as a plain space, or as the same box as any other such character.
    """
    category = unicodedata.category(character)
    if category == "Cf":
        return "an invisible format character"
    if _IGNORABLE.match(character):
        return "an invisible character"
    return {
        "Zs": "a space other than U+0020",
        "Cn": "an unassigned code point or noncharacter",
        "Co": "a private-use character",
    }.get(category, "")


def format_check(value: pd.Series, field: str) -> Check:
    """Rows of ``value`` (str) holding a character that does not show as itself: ``bad_<f>``.

    Such an id is another id that looks the same (BOOK, U+200B, 1 is not BOOK1; BOOK, U+00A0, 1
    is not BOOK 1), or looks like a third one (a bidi override U+202E reorders what follows).
    Refused: what :func:`hidden` names, then a value not in Unicode normalization form C (K,
    U+0301 shows as U+1E30; E, U+0301 as U+00C9, another id). The reason is per row and names
    the row's first hidden character, e.g. ``book_id holds an invisible format character
    U+200B``, else ``book_id is not in Unicode normalization form C``. Categories are read from
    ``unicodedata`` of the running Python, not a copied table.
    """
    failed = np.zeros(len(value), dtype=bool)
    reason = np.full(len(value), "", dtype=object)
    # No ASCII character is hidden and ASCII is normalised: only non-ASCII values are looked at,
    # as one array of code points, each distinct character judged once (a set of a million
    # one-character strings, or a regex class of many characters, took seconds per 100k rows).
    # Positions, not labels: the index is the rows' numbers, which the caller may repeat.
    wide = np.flatnonzero(value.str.contains(r"[^\x00-\x7f]", regex=True).to_numpy(dtype=bool))
    texts = value.iloc[wide]
    codes = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype="<u4")
    # The distinct characters by counting (a hash of millions of code points took a second).
    distinct = np.flatnonzero(np.bincount(codes))
    names = {c: hidden(chr(c)) for c in distinct[distinct > 0x7F].tolist()}
    names = {c: f"{field} holds {what} U+{c:04X}" for c, what in names.items() if what}
    at = np.flatnonzero(np.isin(codes, list(names)))
    # The row of each hidden character, and where each row's first one is.
    owner = np.repeat(np.arange(len(texts)), texts.str.len().to_numpy(dtype="int64"))
    rows, first = np.unique(owner[at], return_index=True)
    named = codes[at[first]].tolist()
    failed[wide[rows]] = True
    reason[wide[rows]] = [names[c] for c in named]
    rest = np.setdiff1d(np.arange(len(texts)), rows)
    loose = wide[rest[~texts.iloc[rest].map(_composed).to_numpy(dtype=bool)]]
    failed[loose] = True
    reason[loose] = f"{field} is not in Unicode normalization form C"
    return (
        pd.Series(failed, index=value.index),
        f"bad_{field}",
        pd.Series(reason, index=value.index),
    )


def _composed(text: str) -> bool:
    return unicodedata.is_normalized("NFC", text)
