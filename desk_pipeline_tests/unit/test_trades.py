"""Validation of received trade rows and the effective trade set."""

import json

import pandas as pd

from desk_pipeline.domain.positions.trades import (
    effective_trades,
    split_conflicting_duplicates,
    validate_trades,
)
from desk_pipeline_tests.builders import DEFECTS, as_received, defective_rows, make_trades, trade

GOOD = {
    "trade_id": "T1",
    "book_id": "B1",
    "instrument_id": "XS1",
    "quantity": "100",
    "price": "99.5",
    "trade_time": "2026-03-02T10:00:00",
}


def raw(*rows: dict) -> pd.DataFrame:
    return as_received(rows, dtype=str)


def reasons(quarantine: pd.DataFrame) -> dict[str, str]:
    return dict(zip(quarantine["trade_id"], quarantine["reason_code"], strict=True))


def test_each_bad_row_is_quarantined_with_its_reason_while_good_rows_pass():
    rows = raw(GOOD, *defective_rows(GOOD))
    trades, quarantine = validate_trades(rows, source="landing:f.csv")
    assert list(trades["trade_id"]) == ["T1"]
    # Each bad row is named after the reason code it must get.
    assert reasons(quarantine) == {code: code for code in DEFECTS}
    assert len(trades) + len(quarantine) == len(rows)
    assert set(quarantine["source"]) == {"landing:f.csv"}
    assert json.loads(quarantine["raw"].iloc[0])["quantity"] == "abc"


def test_version_and_status_default_and_times_without_offset_are_utc():
    trades, _ = validate_trades(
        raw(GOOD, dict(GOOD, trade_id="T2", trade_time="2026-03-02T11:00:00+01:00")), source="s"
    )
    assert list(trades["version"]) == [1, 1] and list(trades["status"]) == ["NEW", "NEW"]
    assert list(trades["trade_time"]) == [pd.Timestamp("2026-03-02 10:00", tz="UTC")] * 2


def test_a_file_without_a_required_column_is_quarantined_row_by_row():
    rows = raw({k: v for k, v in GOOD.items() if k != "price"})
    trades, quarantine = validate_trades(rows, source="s")
    assert trades.empty and list(quarantine["reason_code"]) == ["missing_columns"]


def test_extra_columns_are_ignored():
    trades, quarantine = validate_trades(raw(dict(GOOD, counterparty="ACME")), source="s")
    assert len(trades) == 1 and quarantine.empty


def test_a_repeated_version_with_other_content_conflicts_and_exact_repeats_are_accepted():
    rows = raw(GOOD, GOOD, dict(GOOD, quantity="200"))
    trades, quarantine = validate_trades(rows, source="s")
    # The exact repeat counts as accepted (the warehouse stores it once): 2 + 1 = 3 received.
    assert len(trades) == 2 and list(quarantine["reason_code"]) == ["conflicting_duplicate"]
    assert list(quarantine["row_number"]) == [3]


def test_a_version_stored_before_wins_over_a_conflicting_resend():
    stored = make_trades([trade("T1", 100, 10.0)])
    incoming = make_trades([trade("T1", 100, 10.0), trade("T1", 999, 10.0), trade("T2", 5, 1.0)])
    kept, conflicting = split_conflicting_duplicates(incoming, reference=stored)
    assert list(kept["trade_id"]) == ["T2"]
    assert list(conflicting["quantity"]) == [999.0]


def test_effective_trades_take_the_latest_version_and_drop_cancelled_trades():
    trades = make_trades(
        [
            trade("T1", 100, 10.0, 5),
            trade("T1", 150, 10.0, 5, version=2, status="AMEND"),
            trade("T2", 10, 1.0, 1),
            trade("T2", 10, 1.0, 1, version=2, status="CANCEL"),
            trade("T3", 1, 1.0, 0),
        ]
    )
    result = effective_trades(trades)
    assert list(result["trade_id"]) == ["T3", "T1"]
    assert list(result["quantity"]) == [1.0, 150.0]
