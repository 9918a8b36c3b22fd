"""Input defence: every validation rule has a reason code and no received row is lost."""

import pandas as pd
import pytest

from desk_pipeline.domain.trades import MAX_VERSION, validate_trades

GOOD = {
    "trade_id": "T1",
    "version": "1",
    "status": "NEW",
    "book_id": "B1",
    "instrument_id": "XS1",
    "quantity": "100",
    "price": "99.5",
    "trade_time": "2026-03-02T10:00:00Z",
}


def raw(*rows: dict) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), dtype=object)
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    return frame


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"trade_id": ""}, "empty_trade_id"),
        ({"book_id": "   "}, "empty_book_id"),
        ({"instrument_id": None}, "empty_instrument_id"),
        ({"trade_id": "T" * 65}, "trade_id_too_long"),
        ({"book_id": "B" * 65}, "book_id_too_long"),
        ({"trade_id": "T\x001"}, "bad_trade_id"),
        ({"book_id": "B\n1"}, "bad_book_id"),
        ({"instrument_id": "XS\x7f"}, "bad_instrument_id"),
        ({"quantity": "ten"}, "quantity_not_numeric"),
        ({"quantity": ""}, "quantity_not_numeric"),
        ({"quantity": "-inf"}, "quantity_not_finite"),
        ({"quantity": "0"}, "zero_quantity"),
        ({"price": "nan"}, "price_not_numeric"),
        ({"price": "1e999"}, "price_not_finite"),
        ({"price": "0"}, "price_not_positive"),
        ({"price": "-0.01"}, "price_not_positive"),
        ({"trade_time": "2026-13-45T99:00"}, "bad_trade_time"),
        ({"trade_time": "'; DROP TABLE trades; --"}, "bad_trade_time"),
        ({"status": "PENDING"}, "unknown_status"),
        ({"version": "0"}, "bad_version"),
        ({"version": "-2"}, "bad_version"),
        ({"version": "2.5"}, "bad_version"),
        ({"version": "v2"}, "bad_version"),
        ({"version": str(MAX_VERSION + 1)}, "bad_version"),
        ({"version": "99999999999999999999999"}, "bad_version"),
    ],
)
def test_each_invalid_field_is_quarantined_with_its_reason_code(change, code):
    bad = dict(GOOD, trade_id="Q") | change
    trades, quarantine = validate_trades(raw(GOOD, bad), source="s")
    assert list(trades["trade_id"]) == ["T1"]
    assert list(quarantine["reason_code"]) == [code]
    assert quarantine["reason"].iloc[0] != ""


def test_a_quarantined_id_with_control_characters_is_stored_readably():
    _, quarantine = validate_trades(raw(dict(GOOD, trade_id="T\x00X")), source="s")
    assert list(quarantine["trade_id"]) == ["T?X"]
    assert "\\u0000" in quarantine["raw"].iloc[0]


def test_the_largest_storable_version_is_accepted():
    trades, quarantine = validate_trades(raw(dict(GOOD, version=str(MAX_VERSION))), source="s")
    assert quarantine.empty and list(trades["version"]) == [MAX_VERSION]


def test_exact_repeats_count_as_accepted_so_accepted_plus_quarantined_equals_received():
    rows = raw(GOOD, GOOD, GOOD, dict(GOOD, price="100"), dict(GOOD, trade_id="T2", price="x"))
    trades, quarantine = validate_trades(rows, source="s")
    assert len(trades) + len(quarantine) == len(rows) == 5
    assert sorted(quarantine["reason_code"]) == ["conflicting_duplicate", "price_not_numeric"]
    assert list(quarantine.sort_values("row_number")["row_number"]) == [4, 5]
