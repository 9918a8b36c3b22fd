"""Input defence: every validation rule has a reason code and no received row is lost."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

from desk_pipeline.domain.positions.trades import (
    EARLIEST_TRADE_TIME,
    LATEST_TRADE_TIME,
    MAX_VERSION,
    validate_trades,
)
from desk_pipeline.domain.precision import MAX_ABS_QUANTITY, MAX_PRICE, QUANTITY_SCALE
from desk_pipeline.domain.validation.cells import CONTROL_CHARACTERS
from desk_pipeline_tests.builders import as_received
from desk_pipeline_tests.sizes import examples
from desk_pipeline_tests.strategies import trade_rows

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
    return as_received(rows, dtype=object)


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
        ({"trade_id": "T\ud800"}, "bad_trade_id"),
        ({"quantity": "1e308"}, "quantity_out_of_range"),
        ({"quantity": "-1000000000.000001"}, "quantity_out_of_range"),
        ({"quantity": "0.0000001"}, "quantity_too_precise"),
        ({"quantity": "1e-400"}, "quantity_too_precise"),
        ({"quantity": "1234.5678901e-3"}, "quantity_too_precise"),
        ({"price": "1e308"}, "price_out_of_range"),
        ({"price": "1000000000.01"}, "price_out_of_range"),
        ({"trade_time": "0026-03-02T10:00:00Z"}, "trade_time_out_of_range"),
        ({"trade_time": "1600-01-01T00:00:00"}, "trade_time_out_of_range"),
        ({"trade_time": "2300-01-01T00:00:00"}, "trade_time_out_of_range"),
        ({"trade_time": "9999-12-31T23:59:59.999999999Z"}, "trade_time_out_of_range"),
        ({"trade_time": "1969-12-31T23:59:59.999999Z"}, "trade_time_out_of_range"),
        ({"trade_time": "now"}, "bad_trade_time"),
        ({"trade_time": "today"}, "bad_trade_time"),
        ({"trade_time": "2026-03-02T10:00:00+24:00"}, "bad_trade_time"),
        ({"trade_time": "2026"}, "trade_time_without_time"),
        ({"trade_time": "2026-03"}, "trade_time_without_time"),
        ({"trade_time": "2026-03-02"}, "trade_time_without_time"),
        ({"trade_time": "2026-03-02T10:00:00.000000100Z"}, "trade_time_too_precise"),
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


@pytest.mark.parametrize(
    ("change", "field", "value"),
    [
        ({"quantity": "-1e9"}, "quantity", -1e9),
        ({"quantity": "0.000001"}, "quantity", 1e-6),
        ({"quantity": "12.3450000000"}, "quantity", 12.345),
        ({"price": "1e9"}, "price", 1e9),
        ({"price": "5e-324"}, "price", 5e-324),
        (
            {"trade_time": "2026-03-02T10:00:00.123456000Z"},
            "trade_time",
            "2026-03-02 10:00:00.123456",
        ),
        ({"trade_time": "2026-03-02 11:00+01"}, "trade_time", "2026-03-02 10:00"),
        ({"trade_time": "1970-01-01T00:00:00Z"}, "trade_time", "1970-01-01"),
        ({"trade_time": "2099-12-31T23:59:59.999999"}, "trade_time", "2099-12-31 23:59:59.999999"),
    ],
)
def test_values_at_the_edges_of_the_accepted_ranges_are_accepted(change, field, value):
    trades, quarantine = validate_trades(raw(dict(GOOD) | change), source="s")
    assert quarantine.empty
    expected = pd.Timestamp(value, tz="UTC") if field == "trade_time" else value
    assert trades[field].iloc[0] == expected


def test_a_quarantined_row_is_valid_json_whatever_it_held():
    typed = pd.DataFrame(
        {"trade_id": ["Q\ud800"], "quantity": [float("inf")], "price": [float("nan")]},
        index=pd.RangeIndex(1, 2),
    ).assign(book_id=None, instrument_id="X", trade_time=pd.Timestamp("2026-03-02", tz="UTC"))
    _, quarantine = validate_trades(typed, source="s")

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    body = json.loads(quarantine["raw"].iloc[0], parse_constant=refuse)
    assert body["trade_id"] == "Q\ufffd" and body["quantity"] == "inf" and body["price"] is None
    assert body["trade_time"] == "2026-03-02 00:00:00+00:00"
    quarantine["raw"].iloc[0].encode("utf-8")  # storable: no unpaired surrogate left


def test_the_largest_storable_version_is_accepted():
    trades, quarantine = validate_trades(raw(dict(GOOD, version=str(MAX_VERSION))), source="s")
    assert quarantine.empty and list(trades["version"]) == [MAX_VERSION]


def test_exact_repeats_count_as_accepted_so_accepted_plus_quarantined_equals_received():
    rows = raw(GOOD, GOOD, GOOD, dict(GOOD, price="100"), dict(GOOD, trade_id="T2", price="x"))
    trades, quarantine = validate_trades(rows, source="s")
    assert len(trades) + len(quarantine) == len(rows) == 5
    assert sorted(quarantine["reason_code"]) == ["conflicting_duplicate", "price_not_numeric"]
    assert list(quarantine.sort_values("row_number")["row_number"]) == [4, 5]


def strict_json(text: str) -> object:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON (RFC 8259)")

    return json.loads(text, parse_constant=refuse)


@settings(max_examples=examples(40), deadline=None)
@given(trade_rows(max_size=8))
def test_any_row_is_accepted_within_the_documented_ranges_or_quarantined_with_a_reason(rows):
    received = raw(*rows)
    trades, quarantine = validate_trades(received, source="s")
    assert len(trades) + len(quarantine) == len(received)
    assert (quarantine["reason_code"] != "").all() and (quarantine["reason"] != "").all()
    assert all(isinstance(strict_json(r), dict) for r in quarantine["raw"])
    assert trades["quantity"].abs().between(1 / QUANTITY_SCALE, MAX_ABS_QUANTITY).all()
    micro_units = trades["quantity"].to_numpy() * QUANTITY_SCALE
    assert (np.abs(micro_units - np.rint(micro_units)) < 1e-6 * np.abs(micro_units) + 1e-9).all()
    assert ((trades["price"] > 0) & (trades["price"] <= MAX_PRICE)).all()
    times = trades["trade_time"]
    assert ((times >= EARLIEST_TRADE_TIME) & (times < LATEST_TRADE_TIME)).all()
    assert (times.astype("int64") % 1000 == 0).all()
    for field in ("trade_id", "book_id", "instrument_id"):
        assert not trades[field].str.contains(CONTROL_CHARACTERS).any()
