"""Reconciliation predicates behind the asset checks, on plain frames."""

import pandas as pd

from desk_pipeline.domain.positions.reconciliation import (
    duplicate_eods,
    eod_differences,
    quarantine_rate,
    recompute_eods,
    unreconciled_batches,
)
from desk_pipeline_tests.builders import T0, make_trades, trade, with_micro_units

DAY = "2026-03-02"
END = pd.Timestamp("2026-03-03", tz="UTC")


def headers(*rows: tuple[str, str, pd.Timestamp]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["book_id", "business_date", "as_of"])


def stored_rows(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(
        rows,
        columns=[
            "business_date",
            "book_id",
            "instrument_id",
            "quantity",
            "avg_price",
            "realized_pnl",
        ],
    )
    return with_micro_units(frame)


def test_recomputation_applies_every_trade_before_each_eods_as_of():
    trades = make_trades(
        [trade("T1", 100, 180.0), trade("T2", -50, 182.0, 60), trade("T3", 5, 1.0, book="B2")]
    )
    out = recompute_eods(
        trades, headers(("B1", DAY, T0 + pd.Timedelta(minutes=30)), ("B1", "D2", END))
    )
    assert out[["business_date", "quantity", "avg_price", "realized_pnl"]].to_numpy().tolist() == [
        [DAY, 100.0, 180.0, 0.0],
        ["D2", 50.0, 180.0, 100.0],
    ]


def test_stored_eods_equal_to_their_recomputation_reconcile():
    stored = stored_rows([(DAY, "B1", "XS0001", 50.0, 180.0, 100.0)])
    assert eod_differences(stored, stored.copy()).empty


def test_a_changed_quantity_price_or_pnl_is_a_difference():
    stored = stored_rows([(DAY, "B1", "XS0001", 50.0, 180.0, 100.0)])
    for column, value in [
        ("quantity_micro_units", 50_000_001),
        ("avg_price", 180.5),
        ("realized_pnl", 99.0),
    ]:
        recomputed = stored.assign(**{column: value})
        assert len(eod_differences(stored, recomputed)) == 1, column


def test_micro_units_the_float_quantity_cannot_tell_apart_are_a_difference():
    stored = stored_rows([(DAY, "B1", "XS0001", 8800000000.000002, 1.0, 0.0)])
    assert stored["quantity_micro_units"].tolist() == [8_800_000_000_000_002]
    recomputed = stored.assign(quantity_micro_units=8_800_000_000_000_001)  # the same float
    assert len(eod_differences(stored, recomputed)) == 1


def test_a_row_missing_on_either_side_is_a_difference():
    stored = stored_rows([(DAY, "B1", "XS0001", 50.0, 180.0, 100.0)])
    extra = stored_rows([(DAY, "B1", "XS0002", 1.0, 1.0, 0.0)])
    both = pd.concat([stored, extra], ignore_index=True)
    assert eod_differences(stored, both)["instrument_id"].tolist() == ["XS0002"]
    assert eod_differences(both, stored)["instrument_id"].tolist() == ["XS0002"]


def test_rounding_in_the_last_place_is_not_a_difference():
    stored = stored_rows([(DAY, "B1", "XS0001", 3.0, 0.1 + 0.2, 0.0)])
    assert eod_differences(stored, stored.assign(avg_price=0.3)).empty


def test_a_book_day_with_rows_of_two_snapshots_is_a_duplicate():
    rows = pd.DataFrame(
        {
            "book_id": ["B1", "B1", "B2"],
            "business_date": [DAY, DAY, DAY],
            "snapshot_id": ["s1", "s2", "s3"],
        }
    )
    assert duplicate_eods(rows).to_numpy().tolist() == [["B1", DAY, 2]]
    assert duplicate_eods(rows.iloc[1:]).empty


def test_the_quarantine_rate_is_quarantined_over_received_rows():
    batches = pd.DataFrame({"received": [90, 10], "quarantined": [1, 4]})
    assert quarantine_rate(batches) == 0.05
    assert quarantine_rate(batches.iloc[0:0]) == 0.0


def test_a_batch_whose_accepted_and_quarantined_do_not_add_up_is_unreconciled():
    batches = pd.DataFrame(
        {
            "source": ["a.csv", "b.csv"],
            "received": [10, 10],
            "accepted": [8, 7],
            "quarantined": [2, 2],
        }
    )
    assert unreconciled_batches(batches)["source"].tolist() == ["b.csv"]
