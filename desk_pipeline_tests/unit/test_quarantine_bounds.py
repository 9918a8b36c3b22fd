"""Quarantine rows keep a bounded part of huge received text, and stay distinct and JSON."""

import json

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from desk_pipeline.domain.positions.trades import validate_trades
from desk_pipeline.domain.validation.quarantine import (
    MAX_KEPT_BYTES,
    MAX_RAW_BYTES,
    bounded,
    raw_json,
    rejection_fingerprints,
)
from desk_pipeline_tests.sizes import examples

MARKER_BYTES = 160  # "…[truncated, <size> bytes, sha256 <64 hex digits>]" and more


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def test_a_30_mb_trade_id_is_kept_as_its_first_4_kib_with_its_size_and_digest():
    # Seen: a 30 MB trade_id stored in full in trade_id and again in raw.
    huge = "T" * 30_000_135
    raw = pd.DataFrame(
        {
            "trade_id": [huge, huge[:-1] + "U"],
            "book_id": "B1",
            "instrument_id": "I1",
            "quantity": "1",
            "price": "1",
            "trade_time": "2026-03-02T10:00:00Z",
        },
        index=[1, 2],
    )
    _, quarantine = validate_trades(raw, source="landing:huge.csv")

    assert quarantine["reason_code"].tolist() == ["trade_id_too_long"] * 2
    kept = quarantine["trade_id"].iloc[0]
    assert kept.startswith("T" * MAX_KEPT_BYTES + "…[truncated, 30000135 bytes, sha256 ")
    assert utf8_size(kept) <= MAX_KEPT_BYTES + MARKER_BYTES
    assert json.loads(quarantine["raw"].iloc[0]) == {
        "trade_id": kept,
        "book_id": "B1",
        "instrument_id": "I1",
        "quantity": "1",
        "price": "1",
        "trade_time": "2026-03-02T10:00:00Z",
    }
    # The same first 4 KiB and size, yet two inputs: two fingerprints.
    assert rejection_fingerprints(quarantine).nunique() == 2


@settings(max_examples=examples(200), deadline=None)
@given(st.text(max_size=3000), st.integers(0, 3000), st.sampled_from(["", "é", "🦀", "x"]))
def test_bounded_keeps_short_text_and_cuts_long_text_to_a_bounded_distinct_size(text, n, pad):
    long = text + pad * n
    cut = bounded(long)
    if utf8_size(long) <= MAX_KEPT_BYTES:
        assert cut == long
    else:
        assert utf8_size(cut) <= MAX_KEPT_BYTES + MARKER_BYTES
        assert f"[truncated, {utf8_size(long)} bytes, sha256 " in cut
        assert bounded(long + "!") != cut


@settings(max_examples=examples(100), deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=3000),
        st.one_of(st.none(), st.integers(), st.text(max_size=6000)),
        max_size=12,
    )
)
def test_raw_json_is_always_a_bounded_json_object(record):
    text = raw_json(record)
    assert isinstance(json.loads(text), dict)
    assert utf8_size(text) <= MAX_RAW_BYTES + MARKER_BYTES
