"""Quarantine rows: rejected rows kept as received (JSON) with their reason, and fingerprints."""

import hashlib
import json
import math
import re
from typing import Any

import numpy as np
import pandas as pd

from desk_pipeline.domain.schema import QUARANTINE_DTYPES, conform, empty_frame, require_columns
from desk_pipeline.domain.validation.cells import CONTROL_CHARACTERS, text_of

# What no database column can store in text; replaced where quarantine rows keep received text.
UNSTORABLE = r"[\x00\ud800-\udfff]"
_UNSTORABLE = re.compile(UNSTORABLE)
# JSON escapes NUL (\u0000) but writes unpaired surrogates as they are.
_SURROGATES = re.compile(r"[\ud800-\udfff]")
# At most this many UTF-8 bytes of any received text (a cell, a column name, an id, a reason) are
# kept in a quarantine row, so that one huge cell cannot put gigabytes into the warehouse; see
# ``bounded``.
MAX_KEPT_BYTES = 4096
# At most this many bytes of a row's JSON (``raw_json``) before columns are cut: a row with very
# many columns repeats every column name in each of its quarantine rows.
MAX_RAW_BYTES = 4 * MAX_KEPT_BYTES
# A source that cannot read a file at all (not UTF-8, not CSV) hands over one row with this single
# column holding the problem; validation turns it into one whole-file quarantine row.
UNREADABLE_COLUMN = "_unreadable_file"


def unreadable_rows(problem: str) -> pd.DataFrame:
    """What a source hands over for a file it cannot read: one row naming the problem."""
    return pd.DataFrame({UNREADABLE_COLUMN: [problem]}, index=pd.Index([0]), dtype="object")


def quarantine_rows(
    raw: pd.DataFrame, source: str, reason_code: str | pd.Series, reason: str | pd.Series
) -> pd.DataFrame:
    """Quarantine rows for ``raw``, keeping each row as received (JSON) with its reason.

    ``trade_id`` comes from the raw ``trade_id`` column; rows without one (reference data) get "".
    """
    if raw.empty:
        return empty_frame(QUARANTINE_DTYPES)
    if not raw.columns.is_unique:
        # A JSON object holds a name once: later repeats are kept as "<name>#2", "<name>#3", ...
        seen: dict[str, int] = {}
        names = []
        for column in map(str, raw.columns):
            seen[column] = seen.get(column, 0) + 1
            names.append(column if seen[column] == 1 else f"{column}#{seen[column]}")
        raw = raw.set_axis(names, axis=1)
    records = raw.astype("object").to_dict(orient="records")
    return pd.DataFrame(
        {
            "source": source,
            "row_number": raw.index.to_numpy(dtype="int64"),
            # The id as received, cleaned only so that the quarantine itself can store it.
            "trade_id": text_of(raw, "trade_id")
            .map(bounded)
            .str.replace(CONTROL_CHARACTERS, "?", regex=True),
            "reason_code": reason_code,
            "reason": storable(pd.Series(reason, index=raw.index, dtype="object").map(bounded)),
            "raw": [raw_json(r) for r in records],
        },
        index=raw.index,
    )


def raw_json(record: dict[Any, Any]) -> str:
    """A received row as a valid JSON object (RFC 8259) that any database can store.

    Missing cells and NaN are null, an infinite number is its text (``"inf"``); text keeps
    every character (control characters escaped) except unpaired surrogates (U+FFFD); other
    values are their text. Names and text over MAX_KEPT_BYTES are cut (``bounded``); a row whose
    JSON is over MAX_RAW_BYTES keeps its first columns that fit and a ``"…"`` member naming how
    many columns were cut, the JSON's size and its SHA-256.
    """

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return _SURROGATES.sub("\ufffd", bounded(value))
        if value is None or value is pd.NA or value is pd.NaT:
            return None
        if isinstance(value, bool | np.bool_):
            return bool(value)
        if isinstance(value, int | np.integer):
            return int(value)
        if isinstance(value, float | np.floating):
            number = float(value)
            return None if math.isnan(number) else number if math.isfinite(number) else str(number)
        return clean(str(value))

    body = {clean(str(k)): clean(v) for k, v in record.items()}
    text = json.dumps(body, ensure_ascii=False, allow_nan=False)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size <= MAX_RAW_BYTES:
        return text
    kept: dict[str, Any] = {}
    used = 2  # the braces
    for name, value in body.items():
        member = len(json.dumps({name: value}, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        if used + member > MAX_RAW_BYTES:
            break
        kept[name] = value
        used += member
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    cut = len(body) - len(kept)
    kept["…"] = f"[truncated, {cut} more columns, {size} bytes, sha256 {digest}]"
    return json.dumps(kept, ensure_ascii=False, allow_nan=False)


def bounded(text: str) -> str:
    """``text`` cut to its first MAX_KEPT_BYTES UTF-8 bytes, with a marker when cut.

    The marker names the original size and the SHA-256 of the whole text
    (``…[truncated, 30000135 bytes, sha256 <hex>]``): a quarantine row's fingerprint
    (``rejection_fingerprints``) is then as distinct as the full input. Short text is unchanged.
    """
    if len(text) * 4 <= MAX_KEPT_BYTES:  # at most 4 bytes a character: short enough
        return text
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= MAX_KEPT_BYTES:
        return text
    # errors="ignore" drops a character cut in the middle of its bytes.
    kept = encoded[:MAX_KEPT_BYTES].decode("utf-8", "ignore")
    digest = hashlib.sha256(encoded).hexdigest()
    return f"{kept}…[truncated, {len(encoded)} bytes, sha256 {digest}]"


def storable(texts: pd.Series) -> pd.Series:
    """Received text with NUL and unpaired surrogates replaced by U+FFFD (see UNSTORABLE)."""
    return texts.astype(str).str.replace(UNSTORABLE, "\ufffd", regex=True)


def quarantine_whole_source(source: str, reason_code: str, reason: str) -> pd.DataFrame:
    """One quarantine row standing for an input that could not be read at all (row_number 0)."""
    frame = pd.DataFrame(
        {
            "source": [source],
            "row_number": [0],
            "trade_id": [""],
            "reason_code": [reason_code],
            "reason": [_UNSTORABLE.sub("\ufffd", bounded(reason))],
            "raw": [""],
        }
    )
    return conform(frame, QUARANTINE_DTYPES)


def rejection_fingerprints(quarantined: pd.DataFrame) -> pd.Series:
    """One SHA-256 hex digest per quarantine row, equal for the same rejected input.

    A rejected input is its reason code and the row as received, wherever it arrived: the same
    bad row in a renamed copy, in a file re-sent with rows appended or rewritten with CRLF line
    ends is one input (the CSV reader has already removed the line ends). A whole-file rejection
    (row_number 0, no row) is its file: the source is part of its fingerprint. A value cut to
    MAX_KEPT_BYTES (``bounded``) keeps the size and SHA-256 of the whole value, so inputs that
    differ only past the cut keep distinct fingerprints.

    Args:
        quarantined: QUARANTINE_DTYPES rows.

    Returns:
        str Series aligned with ``quarantined``.
    """
    require_columns(quarantined, QUARANTINE_DTYPES, where="rejection_fingerprints")
    whole_file = quarantined["row_number"].to_numpy() == 0
    identity = quarantined["raw"].astype(str).where(~whole_file, quarantined["source"].astype(str))
    keys = quarantined["reason_code"].astype(str) + "\x1f" + identity
    return keys.map(lambda key: hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest())
