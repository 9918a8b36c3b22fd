"""Validation of received reference data and marks: bad rows are quarantined, none are lost."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desk_pipeline.adapters.simulator import DeskSimulator
from desk_pipeline.domain.precision import MAX_PRICE
from desk_pipeline.domain.reference.validation import (
    DEFAULT_HOLDING_PERIOD_DAYS,
    EARLIEST_MARK_DATE,
    LATEST_MARK_DATE,
    MAX_HOLDING_PERIOD_DAYS,
    MAX_USD_PER_UNIT,
    MIN_USD_PER_UNIT,
    source_label,
    validate_books,
    validate_fx,
    validate_instruments,
    validate_prices,
    validate_reference,
)
from desk_pipeline.domain.schema import (
    BOOK_DTYPES,
    FX_DTYPES,
    INSTRUMENT_DTYPES,
    PRICE_DTYPES,
    QUARANTINE_DTYPES,
)
from desk_pipeline.domain.validation.quarantine import unreadable_rows
from desk_pipeline_tests.builders import as_received, validated_reference
from desk_pipeline_tests.sizes import examples
from desk_pipeline_tests.strategies import REFERENCE_KINDS, rows_like

INSTRUMENT_HEADER = [
    "instrument_id",
    "name",
    "asset_class",
    "issuer_type",
    "issuer",
    "rating",
    "maturity_date",
    "currency",
]


def received(rows: list[list[str]], columns: list[str]) -> pd.DataFrame:
    """Rows as a landing file hands them over: strings."""
    return as_received(rows, columns, dtype="str")


def dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return {c: str(t) for c, t in frame.dtypes.items()}


def codes(quarantine: pd.DataFrame) -> dict[int, str]:
    return dict(zip(quarantine["row_number"], quarantine["reason_code"], strict=True))


def test_good_instrument_rows_are_typed_and_each_bad_one_is_quarantined_with_its_reason():
    raw = received(
        [
            ["DE1", "Bund", "government_bond", "sovereign", "DE", "AAA", "2031-02-15", "EUR"],
            ["X2", "Corp", " Corporate_Bond", "OTHER", "Acme", "Baa2", "2029-01-01", "usd"],
            ["EQ3", "Equity", "equity_main_index", "", "", "", "", "EUR"],
            ["X4", "Bad", "stock", "other", "", "", "", "EUR"],
            ["X5", "Bad", "corporate_bond", "bank", "", "", "", "EUR"],
            ["X6", "Bad", "equity_other", "", "", "ZZZ", "", "EUR"],
            ["X7", "Bad", "equity_other", "", "", "", "soon", "EUR"],
            ["X8", "Bad", "equity_other", "", "", "", "", "EURO"],
            ["", "Bad", "equity_other", "", "", "", "", "EUR"],
            ["X" * 65, "Bad", "equity_other", "", "", "", "", "EUR"],
        ],
        INSTRUMENT_HEADER,
    )
    instruments, quarantine = validate_instruments(raw, source="landing:instruments.csv#ab")

    assert dtypes(instruments) == dict(INSTRUMENT_DTYPES)
    assert instruments["instrument_id"].tolist() == ["DE1", "X2", "EQ3"]
    x2 = instruments.iloc[1]
    assert (x2["asset_class"], x2["issuer_type"], x2["rating"], x2["currency"]) == (
        "corporate_bond",
        "other",
        "Baa2",
        "USD",
    )
    equity = instruments.iloc[2]
    assert equity["issuer_type"] is None and equity["rating"] is None
    assert pd.isna(equity["maturity_date"])
    assert codes(quarantine) == {
        4: "unknown_asset_class",
        5: "unknown_issuer_type",
        6: "unknown_rating",
        7: "bad_maturity_date",
        8: "bad_currency",
        9: "empty_instrument_id",
        10: "instrument_id_too_long",
    }
    assert dtypes(quarantine) == dict(QUARANTINE_DTYPES)
    assert (quarantine["source"] == "landing:instruments.csv#ab").all()
    assert (quarantine["trade_id"] == "").all() and quarantine["reason"].str.len().gt(0).all()
    assert json.loads(quarantine["raw"].iloc[0])["asset_class"] == "stock"
    assert len(instruments) + len(quarantine) == len(raw)


def test_a_repeated_key_keeps_the_first_row_quarantines_a_conflict_and_drops_an_exact_repeat():
    raw = received(
        [
            ["B1", "2026-03-04", "0.98"],
            ["B1", "2026-03-04", "0.98"],
            ["B1", "2026-03-04", "0.50"],
            ["B1", "2026-03-05", "0.99"],
        ],
        ["instrument_id", "price_date", "price"],
    )
    prices, quarantine = validate_prices(raw, source="s")

    assert prices["price"].tolist() == [0.98, 0.99]
    assert codes(quarantine) == {3: "conflicting_duplicate"}


@pytest.mark.parametrize(
    ("price", "code"),
    [
        ("n/a", "price_not_numeric"),
        ("", "price_not_numeric"),
        ("inf", "price_not_finite"),
        ("0", "price_not_positive"),
        ("-1.5", "price_not_positive"),
        ("1e308", "price_out_of_range"),
        ("1000000000.5", "price_out_of_range"),
    ],
)
def test_a_price_that_is_not_a_positive_finite_number_is_quarantined(price, code):
    raw = received([["B1", "2026-03-04", price]], ["instrument_id", "price_date", "price"])
    prices, quarantine = validate_prices(raw, source="s")
    assert prices.empty and codes(quarantine) == {1: code}


def test_a_price_with_a_bad_date_is_quarantined_and_a_good_one_is_a_naive_date():
    raw = received(
        [["B1", "2026-03-04", "1"], ["B2", "04/03/2026x", "1"]],
        ["instrument_id", "price_date", "price"],
    )
    prices, quarantine = validate_prices(raw, source="s")
    assert dtypes(prices) == dict(PRICE_DTYPES)
    assert prices["price_date"].tolist() == [pd.Timestamp("2026-03-04")]
    assert codes(quarantine) == {2: "bad_price_date"}


def test_books_default_to_a_five_day_holding_period_and_reject_a_non_positive_or_partial_one():
    raw = received(
        [
            ["REPO-1", "eur", ""],
            ["LEND-1", "USD", "10"],
            ["B3", "EUR", "0"],
            ["B4", "EUR", "2.5"],
            ["B5", "EUR", "ten"],
            ["B6", "", "5"],
        ],
        ["book_id", "base_currency", "holding_period_days"],
    )
    books, quarantine = validate_books(raw, source="s")

    assert dtypes(books) == dict(BOOK_DTYPES)
    assert books.to_dict(orient="records") == [
        {"book_id": "REPO-1", "base_currency": "EUR", "holding_period_days": 5},
        {"book_id": "LEND-1", "base_currency": "USD", "holding_period_days": 10},
    ]
    assert DEFAULT_HOLDING_PERIOD_DAYS == 5
    assert codes(quarantine) == {
        3: "bad_holding_period",
        4: "bad_holding_period",
        5: "bad_holding_period",
        6: "bad_base_currency",
    }


def test_fx_rates_need_an_iso_currency_a_date_and_a_positive_usd_value():
    raw = received(
        [
            ["EUR", "2026-03-04", "1.08"],
            ["EURO", "2026-03-04", "1.1"],
            ["GBP", "", "1.27"],
            ["JPY", "2026-03-04", "-0.0067"],
        ],
        ["currency", "rate_date", "usd_per_unit"],
    )
    rates, quarantine = validate_fx(raw, source="s")
    assert dtypes(rates) == dict(FX_DTYPES)
    assert rates["currency"].tolist() == ["EUR"] and rates["usd_per_unit"].tolist() == [1.08]
    assert codes(quarantine) == {
        2: "bad_currency",
        3: "bad_rate_date",
        4: "usd_per_unit_not_positive",
    }


def test_a_file_missing_a_required_column_quarantines_every_row_and_ignores_extra_columns():
    raw = received([["B1", "1.0", "x"], ["B2", "2.0", "y"]], ["instrument_id", "price", "extra"])
    prices, quarantine = validate_prices(raw, source="s")
    assert prices.empty
    assert codes(quarantine) == {1: "missing_columns", 2: "missing_columns"}
    assert "price_date" in quarantine["reason"].iloc[0]


def test_an_unreadable_file_becomes_one_whole_file_quarantine_row():
    for validate in (validate_instruments, validate_books, validate_prices, validate_fx):
        valid, quarantine = validate(unreadable_rows("not UTF-8: byte 0xff"), source="s")
        assert valid.empty
        assert quarantine[["row_number", "reason_code", "reason"]].to_dict("records") == [
            {"row_number": 0, "reason_code": "unreadable_file", "reason": "not UTF-8: byte 0xff"}
        ]


def test_typed_simulator_frames_pass_validation_unchanged():
    desk = DeskSimulator(n_instruments=50, n_books=4)
    day = pd.Timestamp("2026-03-04")
    result = validated_reference("simulator", desk, day)
    assert result.quarantine.empty
    assert result.received == 50 + 4 + 50 + 4
    for got, want in [
        (result.instruments, desk.instruments()),
        (result.books, desk.books()),
        (result.prices, desk.prices(day, day)),
        (result.fx_rates, desk.fx_rates(day, day)),
    ]:
        want = want.reset_index(drop=True)
        pd.testing.assert_frame_equal(got.fillna(np.nan), want.fillna(np.nan))


def test_validate_reference_labels_quarantine_rows_by_file_and_content():
    prices = received([["B1", "2026-03-04", "bad"]], ["instrument_id", "price_date", "price"])
    books = received([["B1", "EUR", "0"]], ["book_id", "base_currency", "holding_period_days"])
    result = validate_reference("landing", prices=prices, books=books)

    labels = result.quarantine["source"].tolist()
    assert labels[0].startswith("landing:books.csv#") and labels[1].startswith(
        "landing:prices.csv#"
    )
    assert result.received == 2 and result.instruments.empty and result.fx_rates.empty
    assert source_label("landing", "prices.csv", prices) == labels[1]
    changed = prices.assign(price="bad2")
    assert source_label("landing", "prices.csv", changed) != labels[1]


def test_validation_does_not_modify_its_input():
    raw = received([["X4", "Bad", "stock", "other", "", "", "", "EUR"]], INSTRUMENT_HEADER)
    before = raw.copy()
    validate_instruments(raw, source="s")
    pd.testing.assert_frame_equal(raw, before)


@pytest.mark.parametrize(
    ("date", "code"),
    [
        ("0026-03-04", "price_date_out_of_range"),
        ("9999-12-31", "price_date_out_of_range"),
        ("1600-01-01", "price_date_out_of_range"),
        ("today", "bad_price_date"),
        ("2026-03", "bad_price_date"),
        ("2026-02-30", "bad_price_date"),
        ("2026-03-04T10:00:00Z", "bad_price_date"),
    ],
)
def test_a_mark_dated_outside_the_window_or_not_as_a_date_is_quarantined(date, code):
    raw = received([["B1", date, "1"]], ["instrument_id", "price_date", "price"])
    prices, quarantine = validate_prices(raw, source="s")
    assert prices.empty and codes(quarantine) == {1: code}


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"maturity_date": "9999-12-31"}, "maturity_date_out_of_range"),
        ({"maturity_date": "0031-02-15"}, "maturity_date_out_of_range"),
        ({"instrument_id": "DE\x001"}, "bad_instrument_id"),
        ({"name": "Bund\x00"}, "bad_name"),
        ({"issuer": "D\ud800E"}, "bad_issuer"),
    ],
)
def test_instrument_values_no_database_can_hold_are_quarantined(change, code):
    row = dict(
        zip(
            INSTRUMENT_HEADER,
            ["DE1", "Bund", "government_bond", "sovereign", "DE", "AAA", "2031-02-15", "EUR"],
            strict=True,
        )
    )
    instruments, quarantine = validate_instruments(
        received([list((row | change).values())], INSTRUMENT_HEADER), source="s"
    )
    assert instruments.empty and codes(quarantine) == {1: code}
    quarantine["raw"].iloc[0].encode("utf-8")


def test_a_century_bond_keeps_its_maturity():
    row = ["AT1", "Austria 2117", "government_bond", "sovereign", "AT", "AA+", "2117-06-20", "EUR"]
    instruments, quarantine = validate_instruments(received([row], INSTRUMENT_HEADER), source="s")
    assert quarantine.empty
    assert instruments["maturity_date"].tolist() == [pd.Timestamp("2117-06-20")]


@pytest.mark.parametrize(
    ("rate", "code"),
    [("1e-10", "usd_per_unit_out_of_range"), ("1e308", "usd_per_unit_out_of_range")],
)
def test_an_fx_rate_outside_its_bounds_is_quarantined(rate, code):
    raw = received([["EUR", "2026-03-04", rate]], ["currency", "rate_date", "usd_per_unit"])
    rates, quarantine = validate_fx(raw, source="s")
    assert rates.empty and codes(quarantine) == {1: code}


def test_a_holding_period_beyond_a_year_of_business_days_is_quarantined():
    raw = received(
        [["B1", "EUR", str(MAX_HOLDING_PERIOD_DAYS)], ["B2", "EUR", "1e20"]],
        ["book_id", "base_currency", "holding_period_days"],
    )
    books, quarantine = validate_books(raw, source="s")
    assert books["holding_period_days"].tolist() == [MAX_HOLDING_PERIOD_DAYS]
    assert codes(quarantine) == {2: "bad_holding_period"}


def reference_rows(columns: dict[str, list[str]]) -> st.SearchStrategy[pd.DataFrame]:
    return rows_like(columns, max_size=4, kinds=REFERENCE_KINDS).map(
        lambda rows: received([list(r.values()) for r in rows], list(columns))
    )


def strict_json(text: str) -> object:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON (RFC 8259)")

    return json.loads(text, parse_constant=refuse)


@settings(max_examples=examples(12), deadline=None)
@given(
    instruments=reference_rows(
        {
            "instrument_id": ["DE1", "X2"],
            "name": ["Bund"],
            "asset_class": ["government_bond", "equity_other"],
            "issuer_type": ["sovereign", ""],
            "issuer": ["DE"],
            "rating": ["AAA", "Baa2", ""],
            "maturity_date": ["2031-02-15", ""],
            "currency": ["EUR", "usd"],
        }
    ),
    books=reference_rows(
        {"book_id": ["B1", "B2"], "base_currency": ["EUR"], "holding_period_days": ["5", ""]}
    ),
    prices=reference_rows(
        {"instrument_id": ["DE1"], "price_date": ["2026-03-04"], "price": ["99.5", "1"]}
    ),
    fx_rates=reference_rows(
        {"currency": ["EUR", "GBP"], "rate_date": ["2026-03-04"], "usd_per_unit": ["1.08"]}
    ),
)
def test_any_reference_row_is_kept_within_its_ranges_or_quarantined_with_a_reason(
    instruments, books, prices, fx_rates
):
    result = validate_reference(
        "landing", instruments=instruments, books=books, prices=prices, fx_rates=fx_rates
    )
    valid = (result.instruments, result.books, result.prices, result.fx_rates)
    # Exact repeats of a key are dropped from the valid frames: they count as received only.
    assert sum(map(len, valid)) + len(result.quarantine) <= result.received
    assert result.received == sum(map(len, (instruments, books, prices, fx_rates)))
    assert (result.quarantine["reason_code"] != "").all()
    assert all(isinstance(strict_json(r), dict) for r in result.quarantine["raw"])
    assert result.prices["price"].between(np.nextafter(0, 1), MAX_PRICE).all()
    assert result.fx_rates["usd_per_unit"].between(MIN_USD_PER_UNIT, MAX_USD_PER_UNIT).all()
    for dates in (result.prices["price_date"], result.fx_rates["rate_date"]):
        assert dates.between(EARLIEST_MARK_DATE, LATEST_MARK_DATE, inclusive="left").all()
    assert result.books["holding_period_days"].between(1, MAX_HOLDING_PERIOD_DAYS).all()
