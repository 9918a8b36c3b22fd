"""Trades: validation of received rows, versions, and the effective trade set a snapshot uses."""

import hashlib
import json
import math
import re
from typing import Any

import numpy as np
import pandas as pd

from desk_pipeline.domain import parsing
from desk_pipeline.domain.precision import MAX_ABS_QUANTITY, MAX_PRICE, QUANTITY_DECIMALS, to_units
from desk_pipeline.domain.schema import (
    CANCEL,
    NEW,
    QUARANTINE_DTYPES,
    STATUSES,
    TRADE_COLUMNS,
    TRADE_DTYPES,
    conform,
    empty_frame,
    require_columns,
)

REQUIRED_FIELDS = ("trade_id", "book_id", "instrument_id", "quantity", "price", "trade_time")
MAX_ID_LENGTH = 64
# A book id travels in every event: in the AMQP routing key "position_snapshot.created.<book>"
# (a short string: 255 bytes at most) and as the Kafka message key. Bounded in UTF-8 bytes, as
# 64 characters of emoji are 256 bytes: one such book stopped every relay pass.
MAX_BOOK_ID_BYTES = 128
# Versions are stored as 32-bit integers; a larger one would fail the whole batch's insert.
MAX_VERSION = 2**31 - 1
# Control characters (NUL above all: PostgreSQL refuses it in text) are never part of an id, nor
# are lone surrogates (no database encodes them; a CSV cannot hold them, another source can).
CONTROL_CHARACTERS = r"[\x00-\x1f\x7f\ud800-\udfff]"
# What no database column can store in text; replaced where quarantine rows keep received text.
UNSTORABLE = r"[\x00\ud800-\udfff]"
_UNSTORABLE = re.compile(UNSTORABLE)
# JSON escapes NUL (\u0000) but writes unpaired surrogates as they are.
_SURROGATES = re.compile(r"[\ud800-\udfff]")
# Trade times accepted: [EARLIEST_TRADE_TIME, LATEST_TRADE_TIME). Anything outside is a typo or a
# placeholder (0026 for 2026, 9999-12-31), not a trade.
EARLIEST_TRADE_TIME = pd.Timestamp("1970-01-01", tz="UTC")
LATEST_TRADE_TIME = pd.Timestamp("2100-01-01", tz="UTC")
# Why a trade_time is refused, per parsing problem: (reason_code, reason).
TRADE_TIME_PROBLEMS = {
    parsing.NOT_ISO: (
        "bad_trade_time",
        "trade_time is not an ISO 8601 date-time (YYYY-MM-DDThh:mm[:ss[.fraction]]"
        f"[Z|±hh[:mm]], at most {parsing.MAX_TEXT_LENGTH} characters)",
    ),
    parsing.DATE_ONLY: (
        "trade_time_without_time",
        "trade_time has no time of day: a date, a year-month or a year alone is not a trade time",
    ),
    parsing.OUT_OF_RANGE: (
        "trade_time_out_of_range",
        f"trade_time must be from {EARLIEST_TRADE_TIME.isoformat()} up to, not including, "
        f"{LATEST_TRADE_TIME.isoformat()}",
    ),
    parsing.TOO_PRECISE: (
        "trade_time_too_precise",
        "trade_time has non-zero digits below the microsecond: the desk keeps trade times to the "
        "microsecond and would otherwise order such trades by trade_id, not by time",
    ),
}
# Comparing versions of the same (trade_id, version) must ignore float noise from text round trips.
CONTENT_COLUMNS = ("status", "book_id", "instrument_id", "quantity", "price", "trade_time")


def _text(raw: pd.DataFrame, column: str) -> pd.Series:
    """The column as stripped strings ("" where missing); absent columns read as all-empty."""
    if column not in raw.columns:
        return pd.Series("", index=raw.index, dtype="object")
    return raw[column].astype("object").where(raw[column].notna(), "").astype(str).str.strip()


def _first_failure(checks: list[tuple[pd.Series, str, str]], index: pd.Index) -> pd.DataFrame:
    """Per row, the first failing check's (reason_code, reason); empty strings when all pass."""
    code = pd.Series("", index=index, dtype="object")
    reason = pd.Series("", index=index, dtype="object")
    for failed, reason_code, message in reversed(checks):
        code = code.mask(failed, reason_code)
        reason = reason.mask(failed, message)
    return pd.DataFrame({"reason_code": code, "reason": reason})


def validate_trades(raw: pd.DataFrame, *, source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split received rows into valid trades and quarantine rows, losing none.

    Args:
        raw: rows as received, every cell a string or missing (the landing CSV contract:
            trade_id, book_id, instrument_id, quantity, price, trade_time required; version and
            status optional; extra columns ignored). The index is the 1-based row number.
        source: where the rows came from, recorded on every quarantine row.

    Returns:
        ``(trades, quarantine)``: trades with TRADE_DTYPES (trade_time UTC; a time without an
        offset is UTC), quarantine rows with QUARANTINE_DTYPES. ``len(trades) + len(quarantine)
        == len(raw)`` always.
    """
    missing = [c for c in REQUIRED_FIELDS if c not in raw.columns]
    if missing:
        reason = f"missing required columns {missing}; got {list(raw.columns)}"
        return empty_frame(TRADE_DTYPES), quarantine_rows(raw, source, "missing_columns", reason)

    text = {c: _text(raw, c) for c in (*REQUIRED_FIELDS, "version", "status")}
    quantity = pd.to_numeric(text["quantity"], errors="coerce").astype("float64")
    price = pd.to_numeric(text["price"], errors="coerce").astype("float64")
    version = pd.to_numeric(text["version"].replace("", "1"), errors="coerce")
    status = text["status"].str.upper().replace("", NEW)
    trade_time, time_problem = parsing.parse_instants(
        text["trade_time"], EARLIEST_TRADE_TIME, LATEST_TRADE_TIME
    )
    places = pd.Series(parsing.decimal_places(text["quantity"]), index=raw.index)

    checks: list[tuple[pd.Series, str, str]] = []
    for field in ("trade_id", "book_id", "instrument_id"):
        checks.append((text[field] == "", f"empty_{field}", f"{field} is empty"))
        checks.append(
            (
                text[field].str.len() > MAX_ID_LENGTH,
                f"{field}_too_long",
                f"{field} is longer than {MAX_ID_LENGTH} characters",
            )
        )
        checks.append(
            (
                text[field].str.contains(CONTROL_CHARACTERS, regex=True),
                f"bad_{field}",
                f"{field} contains control characters or unpaired surrogates",
            )
        )
    encoded = text["book_id"].str.encode("utf-8", errors="surrogatepass")
    # pandas-stubs declares .str.len() for str elements only; pandas measures bytes as well.
    book_bytes = encoded.str.len()  # type: ignore[misc]
    checks.append(
        (
            book_bytes > MAX_BOOK_ID_BYTES,
            "book_id_too_long",
            f"book_id is longer than {MAX_BOOK_ID_BYTES} bytes in UTF-8 (event routing keys "
            "carry it)",
        )
    )
    checks += [
        (quantity.isna(), "quantity_not_numeric", "quantity is not a number"),
        (quantity.abs() == np.inf, "quantity_not_finite", "quantity is not finite"),
        (
            quantity.abs() > MAX_ABS_QUANTITY,
            "quantity_out_of_range",
            f"quantity must be between -{MAX_ABS_QUANTITY:g} and {MAX_ABS_QUANTITY:g}",
        ),
        (
            places > QUANTITY_DECIMALS,
            "quantity_too_precise",
            f"quantity has more than {QUANTITY_DECIMALS} decimal places (or is written in more "
            f"than {parsing.MAX_TEXT_LENGTH} characters)",
        ),
        (quantity == 0, "zero_quantity", "quantity is zero"),
        (price.isna(), "price_not_numeric", "price is not a number"),
        (price.abs() == np.inf, "price_not_finite", "price is not finite"),
        (price <= 0, "price_not_positive", "price must be greater than zero"),
        (price > MAX_PRICE, "price_out_of_range", f"price must be at most {MAX_PRICE:g}"),
        *(
            (time_problem == problem, code, reason)
            for problem, (code, reason) in TRADE_TIME_PROBLEMS.items()
        ),
        (
            version.isna() | (version < 1) | (version > MAX_VERSION) | (version.fillna(0) % 1 != 0),
            "bad_version",
            f"version must be a positive integer up to {MAX_VERSION}",
        ),
        (~status.isin(STATUSES), "unknown_status", f"status must be one of {list(STATUSES)}"),
    ]
    failures = _first_failure(checks, raw.index)
    bad = failures["reason_code"] != ""

    trades = pd.DataFrame(
        {
            "trade_id": text["trade_id"],
            "version": version.where(~bad, 0).fillna(0).astype("int64"),
            "status": status,
            "book_id": text["book_id"],
            "instrument_id": text["instrument_id"],
            "quantity": quantity,
            "price": price,
            "trade_time": trade_time,
        }
    )[~bad]
    _, conflicts = split_conflicting_duplicates(trades, reference=None)
    # Exact repeats stay: they are accepted rows (stored once by the warehouse), so that
    # accepted + quarantined = received holds per file.
    trades = trades.drop(index=conflicts.index)
    quarantine = pd.concat(
        [
            quarantine_rows(
                raw[bad], source, failures["reason_code"][bad], failures["reason"][bad]
            ),
            quarantine_rows(
                raw.loc[conflicts.index],
                source,
                "conflicting_duplicate",
                "the same (trade_id, version) appears earlier with different content",
            ),
        ]
    )
    return conform(trades, TRADE_DTYPES), conform(quarantine, QUARANTINE_DTYPES)


def split_conflicting_duplicates(
    trades: pd.DataFrame, reference: pd.DataFrame | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Separate rows that repeat a (trade_id, version) with different content.

    The first occurrence wins: earlier rows of ``trades`` and, when given, every row of
    ``reference`` (versions already stored). Exact repeats are dropped silently because re-sending
    the same trade is idempotent by contract.

    Returns:
        ``(kept, conflicting)``: both with the input's index, kept without exact repeats.
    """
    require_columns(trades, TRADE_COLUMNS, where="split_conflicting_duplicates")
    ref = trades.iloc[0:0] if reference is None else reference.loc[:, list(TRADE_COLUMNS)]
    combined = pd.concat([ref.assign(_ref=True), trades.assign(_ref=False)])
    key = ["trade_id", "version"]
    first = combined.drop_duplicates(key, keep="first")
    merged = combined.merge(first[[*key, *CONTENT_COLUMNS]], on=key, suffixes=("", "_first"))
    merged.index = combined.index
    same = np.ones(len(merged), dtype=bool)
    for column in CONTENT_COLUMNS:
        left, right = merged[column], merged[f"{column}_first"]
        if column == "quantity":
            # Exact to the micro-unit: a resend of 1e9 as 1e9 + 1e-6 is a conflict, not noise.
            same &= to_units(left) == to_units(right)
        elif column == "price":
            same &= np.isclose(left.to_numpy(float), right.to_numpy(float), rtol=1e-12, atol=0)
        else:
            same &= (left == right).to_numpy()
    incoming = ~combined["_ref"].to_numpy()
    conflicting = trades[~same[incoming]]
    repeated = combined.duplicated(key, keep="first").to_numpy()[incoming]
    kept = trades[same[incoming] & ~repeated]
    return kept, conflicting


def quarantine_rows(
    raw: pd.DataFrame, source: str, reason_code: str | pd.Series, reason: str | pd.Series
) -> pd.DataFrame:
    """Quarantine rows for ``raw``, keeping each row as received (JSON) with its reason.

    ``trade_id`` comes from the raw ``trade_id`` column; rows without one (reference data) get "".
    """
    if raw.empty:
        return empty_frame(QUARANTINE_DTYPES)
    records = raw.astype("object").to_dict(orient="records")
    return pd.DataFrame(
        {
            "source": source,
            "row_number": raw.index.to_numpy(dtype="int64"),
            # The id as received, cleaned only so that the quarantine itself can store it.
            "trade_id": _text(raw, "trade_id").str.replace(CONTROL_CHARACTERS, "?", regex=True),
            "reason_code": reason_code,
            "reason": storable(pd.Series(reason, index=raw.index, dtype="object")),
            "raw": [raw_json(r) for r in records],
        },
        index=raw.index,
    )


def raw_json(record: dict[Any, Any]) -> str:
    """A received row as a valid JSON object (RFC 8259) that any database can store.

    Missing cells and NaN are null, an infinite number is its text (``"inf"``); text keeps
    every character (control characters escaped) except unpaired surrogates (U+FFFD); other
    values are their text.
    """

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return _SURROGATES.sub("\ufffd", value)
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
    return json.dumps(body, ensure_ascii=False, allow_nan=False)


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
            "reason": [_UNSTORABLE.sub("\ufffd", reason)],
            "raw": [""],
        }
    )
    return conform(frame, QUARANTINE_DTYPES)


def rejection_fingerprints(quarantined: pd.DataFrame) -> pd.Series:
    """One SHA-256 hex digest per quarantine row, equal for the same rejected input.

    A rejected input is its reason code and the row as received, wherever it arrived: the same
    bad row in a renamed copy, in a file re-sent with rows appended or rewritten with CRLF line
    ends is one input (the CSV reader has already removed the line ends). A whole-file rejection
    (row_number 0, no row) is its file: the source is part of its fingerprint.

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


def latest_versions(trades: pd.DataFrame) -> pd.DataFrame:
    """The highest version of each trade_id, cancels included (they decide that a trade is gone)."""
    require_columns(trades, TRADE_COLUMNS, where="latest_versions")
    ordered = trades.sort_values(["trade_id", "version"], kind="stable")
    return ordered.drop_duplicates("trade_id", keep="last").reset_index(drop=True)


def effective_trades(trades: pd.DataFrame) -> pd.DataFrame:
    """The trades a snapshot applies: latest version of each trade_id, cancels removed.

    Returns:
        TRADE_COLUMNS in application order: (trade_time, trade_id).
    """
    latest = latest_versions(trades)
    return order_trades(latest[latest["status"] != CANCEL])


def order_trades(trades: pd.DataFrame) -> pd.DataFrame:
    """Trades sorted in the order the engine applies them: (trade_time, trade_id)."""
    require_columns(trades, TRADE_COLUMNS, where="order_trades")
    order = application_order(trades)
    return (
        trades.reset_index(drop=True)
        if order is None
        else trades.iloc[order].reset_index(drop=True)
    )


def application_order(trades: pd.DataFrame) -> np.ndarray | None:
    """Row positions of ``trades`` in the order the engine applies them: (trade_time, trade_id).

    Returns:
        None when the rows are in that order already, as the warehouse and sources deliver them.
    """
    times = trades["trade_time"].to_numpy(dtype="datetime64[ns]").view("int64")
    # Equal timestamps are rare: sort on the integer times, and on trade_id only within runs of
    # equal times (sorting a million string ids would dominate the engine's time).
    if (times[1:] > times[:-1]).all():
        return None
    order = np.argsort(times, kind="stable")
    sorted_times = times[order]
    equal = sorted_times[1:] == sorted_times[:-1]
    if equal.any():
        tied = np.flatnonzero(np.concatenate([equal, [False]]) | np.concatenate([[False], equal]))
        ties = pd.DataFrame(
            {"time": sorted_times[tied], "trade_id": trades["trade_id"].to_numpy()[order[tied]]}
        )
        within = ties.sort_values(["time", "trade_id"], kind="stable").index.to_numpy()
        order[tied] = order[tied][within]
    return order
