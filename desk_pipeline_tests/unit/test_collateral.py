import math
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desk_pipeline.adapters.haircut_schedules import load_schedule
from desk_pipeline.domain.collateral.brief import brief_reason
from desk_pipeline.domain.collateral.haircuts import haircuts_for, haircuts_on
from desk_pipeline.domain.collateral.ranking import rank_collateral, rank_collateral_days
from desk_pipeline.domain.collateral.ratings import rating_notch
from desk_pipeline.domain.collateral.schedule import HaircutSchedule, parse_schedule
from desk_pipeline.domain.schema import (
    BOOK_DTYPES,
    FX_DTYPES,
    INSTRUMENT_DTYPES,
    POSITION_DTYPES,
    PRICE_DTYPES,
    RANKING_COLUMNS,
    RANKING_DTYPES,
    conform,
    empty_frame,
)
from desk_pipeline_tests.builders import reason_codes
from desk_pipeline_tests.sizes import examples

DAY = pd.Timestamp("2025-03-14")
BASEL = load_schedule(None)
SQRT_HALF = math.sqrt(5 / 10)  # the 5-day repo holding period against Basel's 10-day haircuts


def positions(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["book_id", "instrument_id", "quantity"])
    return conform(frame.assign(avg_price=0.0, realized_pnl=0.0), POSITION_DTYPES)


def instruments(rows: list[tuple]) -> pd.DataFrame:
    columns = ["instrument_id", "asset_class", "issuer_type", "rating", "maturity_date", "currency"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["maturity_date"] = pd.to_datetime(frame["maturity_date"])
    return conform(frame.assign(name="n/a", issuer="n/a"), INSTRUMENT_DTYPES)


def prices(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["instrument_id", "price_date", "price"])
    frame["price_date"] = pd.to_datetime(frame["price_date"])
    return conform(frame, PRICE_DTYPES)


def books(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["book_id", "base_currency", "holding_period_days"])
    return conform(frame, BOOK_DTYPES)


def fx(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["currency", "rate_date", "usd_per_unit"])
    frame["rate_date"] = pd.to_datetime(frame["rate_date"])
    return conform(frame, FX_DTYPES)


def ranking(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(RANKING_COLUMNS))
    # Built from a list, reasons would get pandas' string dtype, where None becomes NaN.
    frame["reason"] = pd.Series([row[-1] for row in rows], dtype="object")
    return conform(frame, RANKING_DTYPES)


MIXED_INSTRUMENTS = instruments(
    [
        # 2027-03-15 is 2.0 years away: sovereign AA+ 1-3y, 2 %.
        ("UST2Y", "government_bond", "sovereign", "AA+", "2027-03-15", "USD"),
        # 19.9 years: sovereign AA+ >10y, 4 %.
        ("UST30", "government_bond", "sovereign", "AA+", "2045-02-15", "USD"),
        # 5.05 years: sovereign AA+ 5-10y, 4 %.
        ("UST5Y", "government_bond", "sovereign", "AA+", "2030-03-31", "USD"),
        # 4.42 years: sovereign AAA 3-5y, 2 %; in EUR, so the 8 % FX add-on applies to a USD book.
        ("BUND5", "government_bond", "sovereign", "AAA", "2029-08-15", "EUR"),
        # 7.2 years: other issuers BBB 5-10y, 12 %.
        ("CORP_BBB", "corporate_bond", "other", "BBB", "2032-06-01", "USD"),
        # BB: other issuers are not eligible below BBB-.
        ("CORP_BB", "corporate_bond", "other", "BB", "2030-01-01", "USD"),
        # Main-index equity: 20 %.
        ("EQ_MAIN", "equity_main_index", "other", None, None, "USD"),
        ("FLAT", "government_bond", "sovereign", "AAA", "2026-01-01", "USD"),
    ]
)
MIXED_PRICES = prices(
    [
        ("UST2Y", "2025-03-14", 99.5),
        ("UST30", "2025-03-13", 81.0),
        ("UST30", "2025-03-14", 80.0),
        ("UST30", "2025-03-17", 1.0),  # after the business day: never used
        ("UST5Y", "2025-03-14", 98.0),
        ("BUND5", "2025-03-14", 101.0),
        ("CORP_BBB", "2025-03-14", 95.0),
        ("CORP_BB", "2025-03-14", 90.0),
        ("EQ_MAIN", "2025-03-07", 50.0),  # 7 days old: stale but still used
        ("FLAT", "2025-03-14", 100.0),
    ]
)
MIXED_FX = fx(
    [
        ("EUR", "2025-03-13", 1.09),
        ("EUR", "2025-03-14", 1.08),
        ("EUR", "2025-03-17", 2.00),  # after the business day: never used
        ("USD", "2025-03-14", 1.0),
    ]
)
MIXED_POSITIONS = positions(
    [
        ("B1", "UST2Y", 1000),
        ("B1", "UST30", 500),
        ("B1", "UST5Y", -100),
        ("B1", "BUND5", 600),
        ("B1", "CORP_BBB", 1000),
        ("B1", "CORP_BB", 1000),
        ("B1", "EQ_MAIN", 2000),
        ("B1", "UNKNOWN", 10),
        ("B1", "FLAT", 0),  # flat: only realised P&L left, not a holding
    ]
)


def rank_mixed(
    held: pd.DataFrame, terms: pd.DataFrame, marks: pd.DataFrame = MIXED_PRICES
) -> pd.DataFrame:
    """rank_collateral of ``held`` on the mixed instruments, ``marks`` and FX; Basel, on DAY."""
    return rank_collateral(held, MIXED_INSTRUMENTS, marks, terms, MIXED_FX, BASEL, DAY)


def test_a_mixed_book_is_ranked_by_lendable_value_with_reasons_for_the_ineligible_items() -> None:
    got = rank_mixed(MIXED_POSITIONS, books([("B1", "USD", 5)]))
    s = SQRT_HALF
    expected = ranking(
        [
            # 1000 x 99.5 x (1 - 0.02 x 0.7071) = 99,500 x 0.985858 = 98,092.86
            ("B1", "UST2Y", 1, 1000.0, 99.5, 1.0, 0.02 * s, 99_500 * (1 - 0.02 * s), True, None),
            # 1000 x 95 x (1 - 0.12 x 0.7071) = 95,000 x 0.915147 = 86,938.98
            ("B1", "CORP_BBB", 2, 1000.0, 95.0, 1.0, 0.12 * s, 95_000 * (1 - 0.12 * s), True,
             None),
            # 2000 x 50 x (1 - 0.20 x 0.7071) = 100,000 x 0.858579 = 85,857.86
            ("B1", "EQ_MAIN", 3, 2000.0, 50.0, 1.0, 0.20 * s, 100_000 * (1 - 0.20 * s), True,
             "stale_price: last price on 2025-03-07, 7 days before 2025-03-14"),
            # 600 x 101 x 1.08 x (1 - (0.02 + 0.08) x 0.7071) = 65,448 x 0.929289 = 60,820.13
            ("B1", "BUND5", 4, 600.0, 101.0, 1.08, 0.10 * s, 65_448 * (1 - 0.10 * s), True,
             None),
            # 500 x 80 x (1 - 0.04 x 0.7071) = 40,000 x 0.971716 = 38,868.63
            ("B1", "UST30", 5, 500.0, 80.0, 1.0, 0.04 * s, 40_000 * (1 - 0.04 * s), True, None),
            ("B1", "CORP_BB", pd.NA, 1000.0, 90.0, 1.0, np.nan, np.nan, False,
             "rating_below_floor: CORP_BB (BB) is below the basel_cre22 floor for corporate_bond"),
            ("B1", "UNKNOWN", pd.NA, 10.0, np.nan, np.nan, np.nan, np.nan, False,
             "unknown_instrument: UNKNOWN is not in the instrument reference data; "
             "no_price: no price for UNKNOWN on or before 2025-03-14"),
            # A short is never collateral; its value is still shown: -100 x 98 x 0.971716
            ("B1", "UST5Y", pd.NA, -100.0, 98.0, 1.0, 0.04 * s, -9_800 * (1 - 0.04 * s), False,
             "short_position: B1 holds -100 of UST5Y"),
        ]
    )  # fmt: skip
    pd.testing.assert_frame_equal(got, expected, rtol=1e-12)
    assert got["value"].iloc[:5].round(2).tolist() == [
        98_092.86,
        86_938.98,
        85_857.86,
        60_820.13,
        38_868.63,
    ]


def test_rank_collateral_does_not_modify_its_inputs() -> None:
    inputs = (MIXED_POSITIONS, MIXED_INSTRUMENTS, MIXED_PRICES, books([]), MIXED_FX)
    before = [frame.copy() for frame in inputs]
    rank_collateral(*inputs, BASEL, DAY)
    for frame, copy in zip(inputs, before, strict=True):
        pd.testing.assert_frame_equal(frame, copy)


def test_a_book_missing_from_books_holds_each_instrument_in_its_own_currency_for_5_days() -> None:
    got = rank_mixed(positions([("NOBOOK", "BUND5", 100)]), books([]))
    # No FX conversion and no FX add-on: 100 x 101 x (1 - 0.02 x 0.7071) = 9,957.17
    assert got["fx_rate"].iloc[0] == 1.0
    assert got["haircut"].iloc[0] == pytest.approx(0.02 * SQRT_HALF)
    assert got["value"].iloc[0] == pytest.approx(10_100 * (1 - 0.02 * SQRT_HALF), rel=1e-12)


def test_a_eur_book_converts_a_usd_bond_at_the_cross_rate_and_adds_the_fx_haircut() -> None:
    got = rank_mixed(positions([("EURBOOK", "UST2Y", 1000)]), books([("EURBOOK", "EUR", 10)]))
    # fx = 1.0 USD / 1.08 USD per EUR = 0.925926 EUR per USD; 10 days: 2 % + 8 % unscaled.
    assert got["fx_rate"].iloc[0] == pytest.approx(1 / 1.08)
    assert got["haircut"].iloc[0] == pytest.approx(0.10)
    assert got["value"].iloc[0] == pytest.approx(99_500 / 1.08 * 0.90, rel=1e-12)


def test_a_missing_fx_rate_makes_an_item_ineligible() -> None:
    got = rank_mixed(positions([("GBPBOOK", "UST2Y", 1000)]), books([("GBPBOOK", "GBP", 5)]))
    assert not got["eligible"].iloc[0]
    assert got["rank"].isna().iloc[0]
    assert got["reason"].iloc[0] == "no_fx_rate: no USD/GBP rate on or before 2025-03-14"
    assert math.isnan(got["fx_rate"].iloc[0])


def test_an_item_without_a_price_on_or_before_the_day_is_ineligible_with_nan_price() -> None:
    got = rank_mixed(
        positions([("B1", "UST2Y", 1000)]),
        books([("B1", "USD", 5)]),
        marks=prices([("UST2Y", "2025-03-17", 99.0)]),
    )
    assert got["reason"].iloc[0] == "no_price: no price for UST2Y on or before 2025-03-14"
    assert math.isnan(got["price"].iloc[0])
    assert math.isnan(got["value"].iloc[0])


def test_equal_values_are_ranked_by_instrument_id() -> None:
    twins = instruments(
        [
            ("B", "equity_other", "other", None, None, "USD"),
            ("A", "equity_other", "other", None, None, "USD"),
        ]
    )
    got = rank_collateral(
        positions([("B1", "B", 10), ("B1", "A", 10)]),
        twins,
        prices([("A", "2025-03-14", 5.0), ("B", "2025-03-14", 5.0)]),
        books([("B1", "USD", 5)]),
        MIXED_FX,
        BASEL,
        DAY,
    )
    assert got["instrument_id"].tolist() == ["A", "B"]
    assert got["rank"].tolist() == [1, 2]


def test_each_book_is_ranked_separately_and_books_come_in_id_order() -> None:
    got = rank_mixed(
        positions([("B2", "UST2Y", 1), ("B1", "UST30", 1), ("B1", "UST2Y", 1)]),
        books([("B1", "USD", 5), ("B2", "USD", 5)]),
    )
    assert got[["book_id", "instrument_id"]].to_numpy().tolist() == [
        ["B1", "UST2Y"],
        ["B1", "UST30"],
        ["B2", "UST2Y"],
    ]
    assert got["rank"].tolist() == [1, 2, 1]


def test_no_positions_give_an_empty_frame_with_the_ranking_columns() -> None:
    got = rank_collateral(
        empty_frame(POSITION_DTYPES),
        empty_frame(INSTRUMENT_DTYPES),
        empty_frame(PRICE_DTYPES),
        empty_frame(BOOK_DTYPES),
        empty_frame(FX_DTYPES),
        BASEL,
        DAY,
    )
    pd.testing.assert_frame_equal(got, empty_frame(RANKING_DTYPES))


def test_only_flat_positions_give_an_empty_frame() -> None:
    got = rank_mixed(positions([("B1", "FLAT", 0)]), books([]))
    pd.testing.assert_frame_equal(got, empty_frame(RANKING_DTYPES))


# --- property: rank_collateral agrees with a plain per-row reference implementation -------------


def reference_cell(inst: dict, schedule: HaircutSchedule, day: pd.Timestamp) -> tuple:
    """(base haircut, reason code) for one instrument, by walking the schedule's rules in order."""
    if pd.notna(inst["maturity_date"]) and inst["maturity_date"] < day:
        return math.nan, "matured"
    years = (
        math.inf if pd.isna(inst["maturity_date"]) else (inst["maturity_date"] - day).days / 365.25
    )
    notch = rating_notch(pd.Series([inst["rating"]], dtype=object)).iloc[0]
    rules = schedule.rules.to_dict("records")

    def same_class(rule: dict) -> bool:
        return (pd.isna(rule["asset_class"]) or rule["asset_class"] == inst["asset_class"]) and (
            pd.isna(rule["issuer_type"]) or rule["issuer_type"] == inst["issuer_type"]
        )

    accepting = [r for r in rules if same_class(r) and r["eligible"]]
    if not accepting:
        return math.nan, "asset_class_not_accepted"
    floors = [math.inf if math.isnan(r["worst_notch"]) else r["worst_notch"] for r in accepting]
    floor = max(floors)
    if not math.isinf(floor) and not (notch <= floor):
        return math.nan, "rating_below_floor"
    for rule in rules:
        if not same_class(rule):
            continue
        if not math.isnan(rule["best_notch"]) and not (notch >= rule["best_notch"]):
            continue
        if not math.isnan(rule["worst_notch"]) and not (notch <= rule["worst_notch"]):
            continue
        if not math.isnan(rule["maturity_from"]) and not years > rule["maturity_from"]:
            continue
        if not math.isnan(rule["maturity_to"]) and not years <= rule["maturity_to"]:
            continue
        return (rule["haircut"], None) if rule["eligible"] else (math.nan, "not_eligible")
    return math.nan, "no_schedule_cell"


def reference_ranking(
    pos: pd.DataFrame,
    inst: pd.DataFrame,
    px: pd.DataFrame,
    bk: pd.DataFrame,
    rates: pd.DataFrame,
    schedule: HaircutSchedule,
    day: pd.Timestamp,
) -> list[dict]:
    holdings: dict[tuple[str, str], float] = {}
    for row in pos.to_dict("records"):
        key = (row["book_id"], row["instrument_id"])
        holdings[key] = holdings.get(key, 0.0) + row["quantity"]
    master = {row["instrument_id"]: row for row in inst.to_dict("records")}
    terms = {row["book_id"]: row for row in bk.to_dict("records")}
    latest_price: dict[str, tuple] = {}
    for row in px.to_dict("records"):
        if row["price_date"] <= day and not math.isnan(row["price"]):
            best = latest_price.get(row["instrument_id"])
            if best is None or row["price_date"] >= best[0]:
                latest_price[row["instrument_id"]] = (row["price_date"], row["price"])
    usd: dict[str, tuple] = {}
    for row in rates.to_dict("records"):
        if row["rate_date"] <= day and not math.isnan(row["usd_per_unit"]):
            best = usd.get(row["currency"])
            if best is None or row["rate_date"] >= best[0]:
                usd[row["currency"]] = (row["rate_date"], row["usd_per_unit"])
    usd_rate = {ccy: rate for ccy, (_, rate) in usd.items()}
    usd_rate.setdefault("USD", 1.0)

    items = []
    for (book, instrument), quantity in sorted(holdings.items()):
        if quantity == 0:
            continue
        codes = []
        known = instrument in master
        info = master.get(instrument)
        ccy = info["currency"] if known else None
        base = terms[book]["base_currency"] if book in terms else ccy
        period = terms[book]["holding_period_days"] if book in terms else 5
        if not known:
            codes.append("unknown_instrument")
        if quantity < 0:
            codes.append("short_position")
        base_haircut = math.nan
        if known:
            base_haircut, code = reference_cell(info, schedule, day)
            if code:
                codes.append(code)
        price_date, price = latest_price.get(instrument, (None, math.nan))
        if math.isnan(price):
            codes.append("no_price")
        if known and ccy == base:
            fx_rate = 1.0
        elif known and ccy in usd_rate and base in usd_rate:
            fx_rate = usd_rate[ccy] / usd_rate[base]
        else:
            fx_rate = math.nan
        if known and math.isnan(fx_rate):
            codes.append("no_fx_rate")
        eligible = not codes
        if price_date is not None and (day - price_date).days > 5:
            codes.append("stale_price")
        scale = math.sqrt(period / 10)
        haircut = base_haircut * scale + (0.0 if ccy == base else 0.08 * scale)
        haircut = min(haircut, 1.0)
        value = quantity * price * fx_rate * (1 - haircut)
        items.append(
            {
                "book_id": book,
                "instrument_id": instrument,
                "quantity": quantity,
                "price": price,
                "fx_rate": fx_rate,
                "haircut": haircut,
                "value": value,
                "eligible": eligible,
                "codes": codes,
            }
        )
    for book in {item["book_id"] for item in items}:
        ranked = sorted(
            (i for i in items if i["book_id"] == book and i["eligible"]),
            key=lambda i: (-i["value"], i["instrument_id"]),
        )
        for rank, item in enumerate(ranked, start=1):
            item["rank"] = rank
    return sorted(
        items,
        key=lambda i: (i["book_id"], not i["eligible"], i.get("rank", 0), i["instrument_id"]),
    )


INSTRUMENT_TEMPLATES = [
    ("government_bond", "sovereign"),
    ("corporate_bond", "other"),
    ("covered_bond", "other"),
    ("securitisation", "securitisation"),
    ("equity_main_index", "other"),
    ("equity_other", "other"),
    ("gold", "other"),
    ("cash", "other"),
    ("fund", "other"),
]
RATINGS = [None, "AAA", "AA-", "A+", "BBB", "BBB-", "BB+", "BB-", "B", "Aa1", "Baa3", "junk"]
CURRENCIES = ["USD", "EUR", "GBP"]
DATE_OFFSETS = st.integers(min_value=-12, max_value=3)


@st.composite
def desks(draw: st.DrawFn) -> tuple[pd.DataFrame, ...]:
    ids = [f"I{n}" for n in range(draw(st.integers(1, 6)))]
    inst_rows = []
    for instrument in ids:
        asset_class, issuer_type = draw(st.sampled_from(INSTRUMENT_TEMPLATES))
        maturity = draw(st.one_of(st.none(), st.integers(min_value=-30, max_value=12_000)))
        inst_rows.append(
            (
                instrument,
                asset_class,
                issuer_type,
                draw(st.sampled_from(RATINGS)),
                None if maturity is None else DAY + pd.Timedelta(days=maturity),
                draw(st.sampled_from(CURRENCIES)),
            )
        )
    held = [*ids, "GHOST"]
    pos_rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["B1", "B2", "B3"]),
                st.sampled_from(held),
                st.sampled_from([-5.0, 0.0, 1.0, 2.5, 100.0, 1000.0]),
            ),
            max_size=12,
        )
    )
    price_rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(held),
                DATE_OFFSETS.map(lambda d: DAY + pd.Timedelta(days=d)),
                st.one_of(st.just(math.nan), st.floats(min_value=0.5, max_value=500)),
            ),
            max_size=12,
        )
    )
    book_rows = [
        (book, draw(st.sampled_from(CURRENCIES)), draw(st.sampled_from([1, 5, 10, 20])))
        for book in ["B1", "B2"]
        if draw(st.booleans())
    ]
    fx_rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(CURRENCIES),
                DATE_OFFSETS.map(lambda d: DAY + pd.Timedelta(days=d)),
                st.floats(min_value=0.5, max_value=2.0),
            ),
            max_size=6,
        )
    )
    return (
        positions(pos_rows),
        instruments(inst_rows),
        prices(price_rows),
        books(book_rows),
        fx(fx_rows),
    )


@settings(max_examples=examples(15), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(desks())
def test_rank_collateral_matches_a_per_row_reference_on_random_desks(
    desk: tuple[pd.DataFrame, ...],
) -> None:
    got = rank_collateral(*desk, BASEL, DAY)
    reference = reference_ranking(*desk, BASEL, DAY)
    expected = ranking(
        [
            (
                i["book_id"],
                i["instrument_id"],
                i.get("rank", pd.NA),
                i["quantity"],
                i["price"],
                i["fx_rate"],
                i["haircut"],
                i["value"],
                i["eligible"],
                None,
            )
            for i in reference
        ]
    ) if reference else empty_frame(RANKING_DTYPES)  # fmt: skip
    pd.testing.assert_frame_equal(
        got.drop(columns="reason"), expected.drop(columns="reason"), rtol=1e-9
    )
    assert reason_codes(got["reason"]) == [i["codes"] for i in reference]


# --- property: a range ranked in one pass equals each of its days ranked on its own -------------

# Friday, a weekend, a holiday-like Monday and Tuesday: days without trades repeat the day
# before's holdings, while their marks age (stale after 5 days) and maturities come closer.
RANGE_DAYS = [DAY + pd.Timedelta(days=d) for d in range(5)]


@st.composite
def ranges(draw: st.DrawFn) -> tuple[pd.DataFrame, ...]:
    """A desk over RANGE_DAYS: stored EOD rows per day, reference data and dated marks."""
    _, inst, _, bk, _ = draw(desks())
    ids = [*inst["instrument_id"], "GHOST"]
    # Maturities on and around the range's days, so that "matured" and the bucket boundaries
    # (1, 3, 5 years) change within the range.
    boundary = st.sampled_from([0, 1, 2, 3, 365, 366, 367, 1095, 1096, 1097, 1826, 1827])
    maturities = draw(
        st.lists(st.one_of(st.none(), boundary), min_size=len(inst), max_size=len(inst))
    )
    inst = inst.assign(
        maturity_date=pd.to_datetime(
            [None if m is None else DAY + pd.Timedelta(days=m) for m in maturities]
        ).astype("datetime64[ns]")
    )
    rows: list[tuple] = []
    held: list[tuple[str, str, float]] = []
    for day in RANGE_DAYS:
        if not held or draw(st.booleans()):  # a trading day; otherwise the holdings repeat
            held = draw(
                st.lists(
                    st.tuples(
                        st.sampled_from(["B1", "B2", "B3"]),
                        st.sampled_from(ids),
                        st.sampled_from([-5.0, 0.0, 1.0, 2.5, 100.0]),
                    ),
                    max_size=10,
                )
            )
        date = day.strftime("%Y-%m-%d")
        as_of = (day + pd.Timedelta(days=1)).tz_localize("UTC")
        rows += [(b, i, q, date, f"{b}/{date}", as_of) for b, i, q in held]
    eod = pd.DataFrame(
        rows,
        columns=["book_id", "instrument_id", "quantity", "business_date", "snapshot_id", "as_of"],
    ).assign(avg_price=1.0, realized_pnl=0.0)
    offsets = st.integers(min_value=-8, max_value=5).map(lambda d: DAY + pd.Timedelta(days=d))
    px = prices(
        draw(
            st.lists(
                st.tuples(
                    st.sampled_from(ids),
                    offsets,
                    st.one_of(st.just(math.nan), st.floats(min_value=0.5, max_value=500)),
                ),
                max_size=15,
            )
        )
    )
    rates = fx(
        draw(
            st.lists(
                st.tuples(st.sampled_from(CURRENCIES), offsets, st.floats(0.5, 2.0)), max_size=8
            )
        )
    )
    return eod, inst, px, bk, rates


@settings(max_examples=examples(15), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ranges())
def test_ranking_a_range_in_one_pass_equals_ranking_each_day_on_its_own(
    desk: tuple[pd.DataFrame, ...],
) -> None:
    eod, inst, px, bk, rates = desk
    got = rank_collateral_days(eod, inst, px, bk, rates, BASEL)
    days = []
    for date, rows in eod.groupby("business_date", sort=True):
        ranked = rank_collateral(rows, inst, px, bk, rates, BASEL, pd.Timestamp(date))
        snapshots = rows.drop_duplicates("book_id")[["book_id", "snapshot_id", "as_of"]]
        days.append(ranked.merge(snapshots, on="book_id").assign(business_date=date))
    if not days:
        assert got.empty
        return
    expected = pd.concat(days, ignore_index=True).loc[:, list(got.columns)]
    expected = expected.astype(got.dtypes.to_dict())
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


@settings(max_examples=examples(15), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ranges())
def test_haircut_cells_of_many_days_at_once_equal_each_day_s_own(
    desk: tuple[pd.DataFrame, ...],
) -> None:
    inst = desk[1]
    days = np.repeat(np.array(RANGE_DAYS, dtype="datetime64[ns]"), len(inst))
    got = haircuts_on(pd.concat([inst] * len(RANGE_DAYS), ignore_index=True), days, BASEL)
    expected = pd.concat([haircuts_for(inst, day, BASEL) for day in RANGE_DAYS], ignore_index=True)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


# --- property: no reason quotes a float's repr, whatever the numbers -----------------------------

# One cell for any class, (0.5, 2] years: every other maturity, and any undated instrument, gets
# a no_schedule_cell reason quoting its residual maturity.
GAPPY = parse_schedule(
    "rule,key,value,asset_class,issuer_type,rating_best,rating_worst,maturity_from_years,"
    "maturity_to_years,haircut_pct,eligible,note\n"
    "setting,name,gappy,,,,,,,,,\n"
    "haircut,,,,,,,0.5,2,3,true,half a year to two\n"
)
FLOAT_NOISE = [
    re.compile(r"\.\d{7,}"),  # more places than a quantity has (QUANTITY_DECIMALS)
    re.compile(r"\d[eE][-+]?\d"),  # exponent notation: 1e-05
    # A whole part of four digits or more without thousands separators (dates removed first).
    re.compile(r"(?<![.\d])\d{4,}"),
    re.compile(r"\b(?:nan|inf)\b"),
]


@st.composite
def desks_with_any_quantities(draw: st.DrawFn) -> tuple[pd.DataFrame, ...]:
    """``desks()`` whose positions hold any finite quantity up to 1e12 units in absolute value.

    1e12 is far beyond any position the desk stores (a trade is at most 1e9 units, a position
    exact up to 2**32): larger floats overflow the micro-units every quantity is summed in.
    """
    pos, *rest = draw(desks())
    quantities = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False)
    drawn = draw(st.lists(quantities, min_size=len(pos), max_size=len(pos)))
    return (pos.assign(quantity=np.array(drawn, dtype="float64")), *rest)


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(desks_with_any_quantities(), st.sampled_from([BASEL, GAPPY]))
def test_no_ranking_reason_quotes_a_float_repr_whatever_the_numbers(
    desk: tuple[pd.DataFrame, ...], schedule: HaircutSchedule
) -> None:
    got = rank_collateral(*desk, schedule, DAY)
    for reason in got["reason"].dropna():
        numbers = re.sub(r"\d{4}-\d{2}-\d{2}", "<date>", reason)
        assert not any(noise.search(numbers) for noise in FLOAT_NOISE), reason


def test_a_short_position_quotes_its_quantity_exactly_with_thousands_separators() -> None:
    shorts = positions(
        [("B1", "UST5Y", -1e-06), ("B2", "UST5Y", -1_234_567.891234), ("B3", "UST5Y", -200_000)]
    )
    got = rank_mixed(shorts, books([]))
    # Before: "-1e-06", "-1234567.891234" and "-200000.0".
    assert got["reason"].tolist() == [
        "short_position: B1 holds -0.000001 of UST5Y",
        "short_position: B2 holds -1,234,567.891234 of UST5Y",
        "short_position: B3 holds -200,000 of UST5Y",
    ]


# --- reasons in brief: a ranking row's reason without what the row already shows ----------------


def test_a_reason_in_brief_drops_the_book_instrument_quantity_and_day_the_row_shows() -> None:
    held = positions(
        [
            ("B1", "CORP_BB", 1000),
            ("B1", "EQ_MAIN", 2000),
            ("B1", "UNKNOWN", 10),
            ("B1", "UST5Y", -100),
            ("B1", "BUND5", 600),
            ("B1", "OLD", 5),
        ]
    )
    old = instruments([("OLD", "government_bond", "sovereign", "AAA", "2025-03-13", "USD")])
    terms = pd.concat([MIXED_INSTRUMENTS, old], ignore_index=True)
    marks = pd.concat([MIXED_PRICES, prices([("OLD", "2025-03-14", 100.0)])], ignore_index=True)
    # A GBP book without a GBP rate: every known instrument also lacks its rate.
    got = rank_collateral(held, terms, marks, books([("B1", "GBP", 5)]), MIXED_FX, BASEL, DAY)
    briefs = {
        r.instrument_id: brief_reason(r.reason, r.book_id, r.instrument_id)
        for r in got.itertuples()
    }
    assert briefs == {
        "CORP_BB": "rating BB below basel_cre22 floor for corporate_bond; no USD/GBP rate",
        "EQ_MAIN": "no USD/GBP rate; stale price of 2025-03-07 (7 days old)",
        "UNKNOWN": "not in the instrument reference data; no price",
        "UST5Y": "short position; no USD/GBP rate",
        "BUND5": "no EUR/GBP rate",
        "OLD": "matured 2025-03-13; no USD/GBP rate",
    }


@pytest.mark.parametrize(
    ("reason", "brief"),
    [
        (
            "not_eligible: tiny lists AAA corporates; repo only as not eligible",
            "tiny lists AAA corporates; repo only as not eligible",
        ),
        (
            "asset_class_not_accepted: basel_cre22 accepts no fund issued by none issuers",
            "basel_cre22 accepts no fund issued by none issuers",
        ),
        (
            "no_schedule_cell: no short cell for C (corporate_bond, unrated, 1.29 years)",
            "no short cell (corporate_bond, unrated, 1.29 years)",
        ),
        # Wording this desk does not know, or naming another instrument: kept whole.
        ("new_code: something new", "new_code: something new"),
        ("matured: D matured on 2026-04-28", "matured: D matured on 2026-04-28"),
        ("short_position: B2 holds -5 of C", "short_position: B2 holds -5 of C"),
        (None, None),
    ],
)
def test_a_reason_in_brief_keeps_what_the_row_does_not_show(
    reason: str | None, brief: str | None
) -> None:
    assert brief_reason(reason, "B1", "C") == brief


# What each code's brief starts with (the schedule's name varies).
BRIEF_WORDS = {
    "unknown_instrument": "not in the instrument reference data",
    "short_position": "short position",
    "matured": r"matured \d{4}-\d{2}-\d{2}",
    "asset_class_not_accepted": r"\S+ accepts no ",
    "rating_below_floor": r"rating \S+ below \S+ floor for ",
    "not_eligible": r"\S+ lists ",
    "no_schedule_cell": r"no \S+ cell \(",
    "no_price": "no price",
    "no_fx_rate": r"no [A-Z]{3}/[A-Z]{3} rate",
    "stale_price": r"stale price of \d{4}-\d{2}-\d{2} \(\d+ days old\)",
}
TINY = parse_schedule(
    "rule,key,value,asset_class,issuer_type,rating_best,rating_worst,maturity_from_years,"
    "maturity_to_years,haircut_pct,eligible,note\n"
    "setting,name,tiny,,,,,,,,,\n"
    "haircut,,,corporate_bond,,AAA,A-,,,,false,corporates A- and better\n"
    "haircut,,,corporate_bond|government_bond,,,,,,5,true,the rest\n"
)


@settings(max_examples=examples(15), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(desks_with_any_quantities(), st.sampled_from([BASEL, GAPPY, TINY]))
def test_every_reason_of_a_random_ranking_has_a_brief_for_each_of_its_codes(
    desk: tuple[pd.DataFrame, ...], schedule: HaircutSchedule
) -> None:
    got = rank_collateral(*desk, schedule, DAY)
    for row, codes in zip(got.itertuples(), reason_codes(got["reason"]), strict=True):
        brief = brief_reason(row.reason, row.book_id, row.instrument_id)
        if row.reason is None:
            assert brief is None
            continue
        parts = brief.split("; ")
        assert len(parts) == len(codes), (row.reason, brief)
        for code, part in zip(codes, parts, strict=True):
            assert re.match(BRIEF_WORDS[code], part), (row.reason, brief)
        # The row's book and instrument are in their own columns; the day in the header.
        words = re.split(r"[\s();,]+", brief)
        assert row.instrument_id not in words and row.book_id not in words, brief
        assert DAY.strftime("%Y-%m-%d") not in brief, brief
