"""EOD valuation: market value and unrealised P&L at the ranking's marks, hand-computed and random.

Worked example on 2026-03-04, book REPO-EUR (base EUR; EUR = 1.08 USD that day, so a USD
amount is worth 1 / 1.08 EUR), book SL-GBP missing from books (valued in GBP). UST in EUR:
market value 398,000 / 1.08 = 368,518.52, unrealised 2,000 / 1.08 = 1,851.85.

============  =========  =====  =====  =========  =============  ==========  ===================
instrument    quantity   avg    price  fx_rate    market_value   unrealised  note
============  =========  =====  =====  =========  =============  ==========  ===================
BUND          1,000,000  0.974  0.98   1          980,000        6,000       long, gain
UST (USD)     400,000    0.99   0.995  1 / 1.08   398,000 USD    2,000 USD   in EUR: see above
OAT           -200,000   1.02   1.03   1          -206,000       -2,000      short, price rose: loss
OLD           300,000    1.01   1.02   1          306,000        3,000       mark 6 days old: stale
MISSING       1,000      10     -      1          null           null        no price
FLATX         0          0      1.00   1          0              0           flat
GHOST         10         5      -      null       null           null        unknown instrument
NOFX (JPY)    50         90     100    null       5,000 JPY      500 JPY     no JPY rate: no base
GILT (SL-GBP) -1,000     1.20   1.10   1          -1,100 GBP     100 GBP     short, price fell: gain
============  =========  =====  =====  =========  =============  ==========  ===================
"""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desk_pipeline.domain.collateral.ranking import rank_collateral
from desk_pipeline.domain.errors import MissingColumnsError
from desk_pipeline.domain.marks import stale
from desk_pipeline.domain.positions.valuation import EOD_COLUMNS, valuation_summary, value_positions
from desk_pipeline.domain.schema import (
    BOOK_DTYPES,
    FX_DTYPES,
    INSTRUMENT_DTYPES,
    PRICE_DTYPES,
    VALUATION_DTYPES,
    conform,
    empty_frame,
)
from desk_pipeline_tests.builders import reason_codes
from desk_pipeline_tests.sizes import examples

DAY = "2026-03-04"


def eod(rows: list[tuple], day: str = DAY) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["book_id", "instrument_id", "quantity", "avg_price"])
    frame["quantity"] = frame["quantity"].astype("float64")
    frame["avg_price"] = frame["avg_price"].astype("float64")
    return frame.assign(business_date=day, snapshot_id=frame["book_id"] + "@" + day)


def instruments(rows: list[tuple[str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["instrument_id", "currency"])
    frame = frame.assign(
        name=None, asset_class="government_bond", issuer_type="sovereign", issuer=None
    )
    return conform(
        frame.assign(rating="AAA", maturity_date=pd.Timestamp("2040-01-01")), INSTRUMENT_DTYPES
    )


def prices(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["instrument_id", "price_date", "price"])
    return conform(frame.assign(price_date=pd.to_datetime(frame["price_date"])), PRICE_DTYPES)


def books(rows: list[tuple[str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["book_id", "base_currency"])
    return conform(frame.assign(holding_period_days=5), BOOK_DTYPES)


def fx(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["currency", "rate_date", "usd_per_unit"])
    return conform(frame.assign(rate_date=pd.to_datetime(frame["rate_date"])), FX_DTYPES)


EOD = eod(
    [
        ("REPO-EUR", "BUND", 1_000_000, 0.974),
        ("REPO-EUR", "UST", 400_000, 0.99),
        ("REPO-EUR", "OAT", -200_000, 1.02),
        ("REPO-EUR", "OLD", 300_000, 1.01),
        ("REPO-EUR", "MISSING", 1_000, 10.0),
        ("REPO-EUR", "FLATX", 0, 0.0),
        ("REPO-EUR", "GHOST", 10, 5.0),
        ("REPO-EUR", "NOFX", 50, 90.0),
        ("SL-GBP", "GILT", -1_000, 1.20),
    ]
)
INSTRUMENTS = instruments(
    [
        ("BUND", "EUR"),
        ("UST", "USD"),
        ("OAT", "EUR"),
        ("OLD", "EUR"),
        ("MISSING", "EUR"),
        ("FLATX", "EUR"),
        ("NOFX", "JPY"),
        ("GILT", "GBP"),
    ]
)
PRICES = prices(
    [
        ("BUND", "2026-03-03", 0.97),
        ("BUND", "2026-03-04", 0.98),
        ("BUND", "2026-03-05", 0.99),  # after the day: never used
        ("UST", "2026-03-04", 0.995),
        ("OAT", "2026-03-04", 1.03),
        ("OLD", "2026-02-26", 1.02),  # 6 days before the day: stale but used
        ("MISSING", "2026-03-05", 11.0),  # only after the day: no mark
        ("FLATX", "2026-03-04", 1.00),
        ("NOFX", "2026-03-04", 100.0),
        ("GILT", "2026-03-04", 1.10),
    ]
)
BOOKS = books([("REPO-EUR", "EUR")])
FX = fx([("EUR", "2026-03-02", 1.05), ("EUR", "2026-03-04", 1.08), ("GBP", "2026-03-04", 1.25)])

NAN = math.nan
# instrument: (currency, base, price, fx_rate, market_value, mv_base, unrealised, upl_base, stale)
EXPECTED = {
    "BUND": ("EUR", "EUR", 0.98, 1.0, 980_000.0, 980_000.0, 6_000.0, 6_000.0, False),
    "FLATX": ("EUR", "EUR", 1.00, 1.0, 0.0, 0.0, 0.0, 0.0, False),
    "GHOST": (None, "EUR", NAN, NAN, NAN, NAN, NAN, NAN, False),
    "MISSING": ("EUR", "EUR", NAN, 1.0, NAN, NAN, NAN, NAN, False),
    "NOFX": ("JPY", "EUR", 100.0, NAN, 5_000.0, NAN, 500.0, NAN, False),
    "OAT": ("EUR", "EUR", 1.03, 1.0, -206_000.0, -206_000.0, -2_000.0, -2_000.0, False),
    "OLD": ("EUR", "EUR", 1.02, 1.0, 306_000.0, 306_000.0, 3_000.0, 3_000.0, True),
    "UST": (
        "USD",
        "EUR",
        0.995,
        1 / 1.08,
        398_000.0,
        368_518.518518518,
        2_000.0,
        1_851.851851852,
        False,
    ),
    "GILT": ("GBP", "GBP", 1.10, 1.0, -1_100.0, -1_100.0, 100.0, 100.0, False),
}
REASONS = {
    "GHOST": "unknown_instrument: GHOST is not in the instrument reference data; "
    "no_price: no price for GHOST on or before 2026-03-04",
    "MISSING": "no_price: no price for MISSING on or before 2026-03-04",
    "NOFX": "no_fx_rate: no JPY/EUR rate on or before 2026-03-04",
    "OLD": "stale_price: last price on 2026-02-26, 6 days before 2026-03-04",
}


def test_the_worked_example_values_longs_shorts_fx_stale_missing_and_flat_positions() -> None:
    got = value_positions(EOD, INSTRUMENTS, PRICES, BOOKS, FX)

    assert list(got.columns) == list(VALUATION_DTYPES)
    assert list(zip(got["book_id"], got["instrument_id"], strict=True)) == [
        *(("REPO-EUR", i) for i in sorted(EXPECTED) if i != "GILT"),
        ("SL-GBP", "GILT"),
    ]
    for row in got.itertuples():
        currency, base, price, fx_rate, mv, mv_base, upl, upl_base, stale = EXPECTED[
            row.instrument_id
        ]
        assert (row.currency, row.base_currency, row.stale_price) == (currency, base, stale)
        numbers = (row.price, row.fx_rate, row.market_value, row.market_value_base)
        numbers += (row.unrealized_pnl, row.unrealized_pnl_base)
        np.testing.assert_allclose(
            numbers,
            (price, fx_rate, mv, mv_base, upl, upl_base),
            rtol=1e-12,
            err_msg=row.instrument_id,
        )
        assert row.reason == REASONS.get(row.instrument_id), row.instrument_id
    old = got.set_index("instrument_id").loc["OLD"]
    assert old["price_date"] == pd.Timestamp("2026-02-26")


def test_the_summary_totals_the_last_day_per_base_currency_and_counts_missing_marks() -> None:
    earlier = eod([("REPO-EUR", "BUND", 5, 1.0)], day="2026-03-03")
    valuation = value_positions(pd.concat([earlier, EOD]), INSTRUMENTS, PRICES, BOOKS, FX)

    summary = valuation_summary(valuation)

    assert summary == pytest.approx(
        {
            "positions_without_mark": 2,  # MISSING and GHOST
            "stale_marks": 1,  # OLD
            # 980,000 + 368,518.52 - 206,000 + 306,000 + 0; MISSING, GHOST and NOFX have none
            "market_value_EUR": 1_448_518.518518518,
            "unrealized_pnl_EUR": 8_851.851851852,  # 6,000 + 1,851.85 - 2,000 + 3,000
            "market_value_GBP": -1_100.0,
            "unrealized_pnl_GBP": 100.0,
        },
        rel=5e-12,  # totals are rounded to 12 significant digits (precision.for_output)
    )


def test_several_days_are_valued_each_at_its_own_marks() -> None:
    two_days = pd.concat(
        [
            eod([("REPO-EUR", "BUND", 100, 0.9)], day="2026-03-03"),
            eod([("REPO-EUR", "BUND", 100, 0.9)]),
        ]
    )

    got = value_positions(two_days, INSTRUMENTS, PRICES, BOOKS, FX)

    assert list(got["business_date"]) == ["2026-03-03", DAY]
    assert list(got["price"]) == [0.97, 0.98]
    np.testing.assert_allclose(got["unrealized_pnl"], [7.0, 8.0], rtol=1e-12)


def test_an_empty_eod_gives_an_empty_frame_with_the_valuation_columns() -> None:
    got = value_positions(EOD.iloc[0:0], INSTRUMENTS, PRICES, BOOKS, FX)

    pd.testing.assert_frame_equal(got, empty_frame(VALUATION_DTYPES))
    assert valuation_summary(got) == {"positions_without_mark": 0, "stale_marks": 0}


def test_value_positions_does_not_modify_its_inputs_and_names_missing_columns() -> None:
    inputs = (EOD, INSTRUMENTS, PRICES, BOOKS, FX)
    copies = [frame.copy() for frame in inputs]

    value_positions(*inputs)

    for frame, copy in zip(inputs, copies, strict=True):
        pd.testing.assert_frame_equal(frame, copy)
    with pytest.raises(MissingColumnsError, match=r"value_positions.*avg_price"):
        value_positions(EOD.drop(columns="avg_price"), *inputs[1:])


def test_the_valuation_uses_the_same_price_and_fx_rate_as_the_collateral_ranking() -> None:
    from desk_pipeline.adapters.haircut_schedules import load_schedule

    valued = value_positions(EOD, INSTRUMENTS, PRICES, BOOKS, FX)
    ranked = rank_collateral(
        EOD, INSTRUMENTS, PRICES, BOOKS, FX, load_schedule(None), pd.Timestamp(DAY)
    )

    held = valued[valued["quantity"] != 0].set_index(["book_id", "instrument_id"])
    both = ranked.set_index(["book_id", "instrument_id"]).join(held, rsuffix="_valued")
    np.testing.assert_array_equal(both["price"], both["price_valued"])
    np.testing.assert_array_equal(both["fx_rate"], both["fx_rate_valued"])


# ---- property test: the vectorised valuation against a plain per-row reference ----------------

CURRENCIES = ["USD", "EUR", "GBP"]
DAYS = [pd.Timestamp("2026-03-03"), pd.Timestamp("2026-03-04")]
DATE_OFFSETS = st.integers(min_value=-10, max_value=2)


def reference_row(
    row: dict,
    instruments: pd.DataFrame,
    prices: pd.DataFrame,
    books: pd.DataFrame,
    fx: pd.DataFrame,
) -> dict:
    """One position valued the obvious way, one lookup at a time."""
    day = pd.Timestamp(row["business_date"])
    currency = None
    for inst in instruments.itertuples():
        if inst.instrument_id == row["instrument_id"]:
            currency = inst.currency  # the last row of a repeated id wins
    base = currency
    for book in books.itertuples():
        if book.book_id == row["book_id"]:
            base = book.base_currency

    def latest(rows: list[tuple[pd.Timestamp, float]]) -> tuple[pd.Timestamp | None, float]:
        usable = [(d, v) for d, v in rows if d <= day and not math.isnan(v)]
        return max(usable, key=lambda dv: dv[0]) if usable else (None, math.nan)

    price_date, price = latest(
        [
            (p.price_date, p.price)
            for p in prices.itertuples()
            if p.instrument_id == row["instrument_id"]
        ]
    )

    def usd(ccy: str | None) -> float:
        rate = latest(
            [(f.rate_date, f.usd_per_unit) for f in fx.itertuples() if f.currency == ccy]
        )[1]
        return 1.0 if ccy == "USD" and math.isnan(rate) else rate

    if currency is not None and currency == base:
        fx_rate = 1.0
    else:
        fx_rate = (
            usd(currency) / usd(base) if currency is not None and base is not None else math.nan
        )
    quantity = row["quantity"]
    flat = quantity == 0
    market_value = 0.0 if flat else quantity * price
    unrealized = 0.0 if flat else (price - row["avg_price"]) * quantity
    stale = price_date is not None and (day - price_date).days > 5
    codes = []
    if not flat:
        codes += ["unknown_instrument"] * (currency is None)
        codes += ["no_price"] * math.isnan(price)
        codes += ["no_fx_rate"] * (currency is not None and math.isnan(fx_rate))
    codes += ["stale_price"] * stale
    return {
        **row,
        "price": price,
        "price_date": price_date,
        "stale_price": stale,
        "currency": currency,
        "base_currency": base,
        "fx_rate": fx_rate,
        "market_value": market_value,
        "market_value_base": 0.0 if flat else market_value * fx_rate,
        "unrealized_pnl": unrealized,
        "unrealized_pnl_base": 0.0 if flat else unrealized * fx_rate,
        "codes": codes,
    }


@st.composite
def desks(draw: st.DrawFn) -> tuple[pd.DataFrame, ...]:
    ids = [f"I{n}" for n in range(draw(st.integers(1, 5)))]
    inst_rows = [(i, draw(st.sampled_from(CURRENCIES))) for i in ids if draw(st.booleans())]
    held = [*ids, "GHOST"]
    pos_rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["B1", "B2", "B3"]),
                st.sampled_from(held),
                st.sampled_from([-50.0, -1.0, 0.0, 1.0, 2.5, 1000.0]),
                st.floats(min_value=0.0, max_value=200.0),
                st.sampled_from(DAYS),
            ),
            max_size=12,
            unique_by=lambda r: (r[0], r[1], r[4]),
        )
    )
    price_rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(held),
                DATE_OFFSETS.map(lambda d: DAYS[-1] + pd.Timedelta(days=d)),
                st.one_of(st.just(math.nan), st.floats(min_value=0.5, max_value=500)),
            ),
            max_size=14,
            unique_by=lambda r: (r[0], r[1]),
        )
    )
    book_rows = [
        (b, draw(st.sampled_from(CURRENCIES))) for b in ["B1", "B2"] if draw(st.booleans())
    ]
    fx_rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(CURRENCIES),
                DATE_OFFSETS.map(lambda d: DAYS[-1] + pd.Timedelta(days=d)),
                st.floats(min_value=0.5, max_value=2.0),
            ),
            max_size=6,
            unique_by=lambda r: (r[0], r[1]),
        )
    )
    positions = pd.DataFrame(
        pos_rows, columns=["book_id", "instrument_id", "quantity", "avg_price", "business_date"]
    )
    positions["business_date"] = positions["business_date"].map(lambda d: d.strftime("%Y-%m-%d"))
    positions = positions.astype({"quantity": "float64", "avg_price": "float64"}).assign(
        snapshot_id=positions["book_id"] + "@" + positions["business_date"]
    )
    return positions, instruments(inst_rows), prices(price_rows), books(book_rows), fx(fx_rows)


@settings(max_examples=examples(20), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(desks())
def test_value_positions_matches_a_per_row_reference_on_random_desks(
    desk: tuple[pd.DataFrame, ...],
) -> None:
    positions, *reference_data = desk

    got = value_positions(positions, *reference_data)

    rows = positions.loc[:, list(EOD_COLUMNS)].to_dict("records")
    reference = sorted(
        (reference_row(r, *reference_data) for r in rows),
        key=lambda r: (r["business_date"], r["book_id"], r["instrument_id"]),
    )
    if not reference:
        pd.testing.assert_frame_equal(got, empty_frame(VALUATION_DTYPES))
        return
    expected = pd.DataFrame(reference)
    # Built from dicts, text columns get pandas' string dtype, where None becomes NaN.
    for column in ("currency", "base_currency"):
        expected[column] = pd.Series([r[column] for r in reference], dtype="object")
    expected["reason"] = None
    expected = conform(expected, VALUATION_DTYPES)
    pd.testing.assert_frame_equal(
        got.drop(columns="reason"), expected.drop(columns="reason"), rtol=1e-12
    )
    assert reason_codes(got["reason"]) == [r["codes"] for r in reference]


def test_a_mark_is_stale_only_when_older_than_five_calendar_days() -> None:
    ages = pd.Series([0, 5, 6, 30, pd.NA], dtype="Int64")
    assert stale(ages).tolist() == [False, False, True, True, False]
