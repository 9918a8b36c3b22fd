"""The demo desk is deterministic: a window's trades never depend on how the range is split."""

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desk_pipeline.adapters.simulator import DeskSimulator
from desk_pipeline.domain.errors import InvalidRangeError
from desk_pipeline.domain.schema import (
    BOOK_DTYPES,
    FX_DTYPES,
    INSTRUMENT_DTYPES,
    PRICE_DTYPES,
    TRADE_DTYPES,
)
from desk_pipeline_tests.sizes import examples

MONDAY = pd.Timestamp("2026-03-02", tz="UTC")
WEEK = pd.Timedelta(days=7)


@pytest.fixture(scope="module")
def desk() -> DeskSimulator:
    return DeskSimulator(seed=11, n_books=8, n_instruments=300, trades_per_day=400)


@pytest.fixture(scope="module")
def week(desk: DeskSimulator) -> pd.DataFrame:
    return desk.trades(MONDAY, MONDAY + WEEK)


def _dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return {column: str(dtype) for column, dtype in frame.dtypes.items()}


def test_frames_have_the_schema_dtypes(desk: DeskSimulator, week: pd.DataFrame) -> None:
    day = pd.Timestamp("2026-03-02")
    assert _dtypes(week) == dict(TRADE_DTYPES)
    assert _dtypes(desk.books()) == dict(BOOK_DTYPES)
    assert _dtypes(desk.instruments()) == dict(INSTRUMENT_DTYPES)
    assert _dtypes(desk.prices(day, day)) == dict(PRICE_DTYPES)
    assert _dtypes(desk.fx_rates(day, day)) == dict(FX_DTYPES)
    assert _dtypes(desk.trades(MONDAY, MONDAY)) == dict(TRADE_DTYPES)


def test_the_same_window_twice_gives_identical_trades(desk: DeskSimulator) -> None:
    again = DeskSimulator(seed=11, n_books=8, n_instruments=300, trades_per_day=400)
    window = (MONDAY + pd.Timedelta(hours=9), MONDAY + pd.Timedelta(days=1, hours=13))
    pd.testing.assert_frame_equal(desk.trades(*window), again.trades(*window))


def test_another_seed_gives_other_trades(desk: DeskSimulator, week: pd.DataFrame) -> None:
    other = DeskSimulator(seed=12, n_books=8, n_instruments=300, trades_per_day=400)
    assert not other.trades(MONDAY, MONDAY + WEEK).equals(week)


@settings(max_examples=examples(25), deadline=None)
@given(cuts=st.lists(st.integers(0, 3 * 86_400_000), min_size=1, max_size=4))
def test_splitting_a_window_anywhere_and_concatenating_gives_the_whole_window(
    desk: DeskSimulator, cuts: list[int]
) -> None:
    start = MONDAY + pd.Timedelta(days=1)  # Tuesday to Friday: busy days on both sides of cuts
    bounds = [start, *(start + pd.Timedelta(ms, unit="ms") for ms in sorted(cuts))]
    bounds.append(start + pd.Timedelta(days=3))
    parts = [desk.trades(a, b) for a, b in itertools.pairwise(bounds)]
    whole = desk.trades(bounds[0], bounds[-1])
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)


def test_ten_minute_windows_tile_the_day(desk: DeskSimulator) -> None:
    edges = pd.date_range(MONDAY, periods=145, freq="10min")
    windows = [desk.trades(a, b) for a, b in itertools.pairwise(edges)]
    day = desk.trades(MONDAY, MONDAY + pd.Timedelta(days=1))
    pd.testing.assert_frame_equal(pd.concat(windows, ignore_index=True), day)


def test_every_trade_time_is_inside_the_requested_window(desk: DeskSimulator) -> None:
    start, end = MONDAY + pd.Timedelta("10:03:17.5"), MONDAY + pd.Timedelta("11:41:00")
    trades = desk.trades(start, end)
    assert len(trades) > 0
    assert trades["trade_time"].ge(start).all()
    assert trades["trade_time"].lt(end).all()


def test_an_empty_window_has_no_trades_and_a_reversed_one_is_refused(desk: DeskSimulator) -> None:
    assert desk.trades(MONDAY, MONDAY).empty
    with pytest.raises(InvalidRangeError):
        desk.trades(MONDAY, MONDAY - pd.Timedelta(seconds=1))
    with pytest.raises(InvalidRangeError):
        desk.trades(pd.Timestamp("2026-03-02"), pd.Timestamp("2026-03-03"))


def test_weekends_are_quiet(desk: DeskSimulator, week: pd.DataFrame) -> None:
    assert week["trade_time"].dt.dayofweek.lt(5).all()
    saturday = MONDAY + pd.Timedelta(days=5)
    assert desk.trades(saturday, saturday + pd.Timedelta(days=2)).empty


def test_most_trades_fall_between_seven_and_eighteen_utc(week: pd.DataFrame) -> None:
    hours = week["trade_time"].dt.hour
    assert hours.between(7, 17).mean() > 0.95
    assert hours.between(6, 19).all()


def test_trades_reference_only_known_books_and_instruments(
    desk: DeskSimulator, week: pd.DataFrame
) -> None:
    assert week["book_id"].isin(desk.books()["book_id"]).all()
    assert week["instrument_id"].isin(desk.instruments()["instrument_id"]).all()
    assert week["status"].isin(["NEW", "AMEND", "CANCEL"]).all()


def test_trade_versions_are_unique_and_ordered_by_time(week: pd.DataFrame) -> None:
    assert not week.duplicated(["trade_id", "version"]).any()
    assert week["trade_time"].is_monotonic_increasing
    assert week["trade_id"].str.fullmatch(r"SIM-\d{8}-\d{7}").all()


def test_amendments_and_cancels_follow_an_earlier_version_on_the_same_day(
    week: pd.DataFrame,
) -> None:
    first = week[week["version"].eq(1)].set_index("trade_id")
    later = week[week["version"].gt(1)]
    assert first["status"].eq("NEW").all()
    assert later["trade_id"].isin(first.index).all()
    original = first.loc[later["trade_id"]]
    assert (later["trade_time"].to_numpy() == original["trade_time"].to_numpy()).all()
    # Only the versions before a trade's last may be amendments; the last may be a cancel.
    last = week.groupby("trade_id")["version"].transform("max")
    assert (week["status"].ne("CANCEL") | week["version"].eq(last)).all()
    amended = week[week["status"].eq("AMEND")].set_index("trade_id")
    base = first.loc[amended.index]
    changed = amended["quantity"].ne(base["quantity"]) | amended["price"].ne(base["price"])
    assert changed.all()
    share = later.drop_duplicates("trade_id").shape[0] / len(first)
    assert 0.01 < share < 0.06


def test_volume_per_weekday_is_about_trades_per_day(week: pd.DataFrame) -> None:
    originals = week[week["version"].eq(1)]
    per_day = originals.groupby(originals["trade_time"].dt.date).size()
    assert len(per_day) == 5
    assert per_day.between(400 - 5 * 20, 400 + 5 * 20).all()  # Poisson: sd = sqrt(400)


def test_quantities_are_signed_round_lots(desk: DeskSimulator, week: pd.DataFrame) -> None:
    classes = desk.instruments().set_index("instrument_id")["asset_class"]
    equity = week["instrument_id"].map(classes).str.startswith("equity").to_numpy()
    size = week["quantity"].abs()
    assert (size[equity] % 100 == 0).all() and size[equity].between(100, 50_000).all()
    assert (size[~equity] % 100_000 == 0).all() and size[~equity].ge(100_000).all()
    assert (week["quantity"] > 0).mean() > 0.5  # books accumulate collateral


def test_trade_prices_are_close_to_the_days_mark(desk: DeskSimulator, week: pd.DataFrame) -> None:
    marks = desk.prices(pd.Timestamp("2026-03-02"), pd.Timestamp("2026-03-06"))
    keyed = week.assign(price_date=week["trade_time"].dt.tz_localize(None).dt.normalize())
    joined = keyed.merge(marks, on=["instrument_id", "price_date"], suffixes=("", "_mark"))
    assert len(joined) == len(week)
    assert (joined["price"] / joined["price_mark"] - 1).abs().max() < 0.02


def test_marks_of_a_date_do_not_depend_on_the_requested_range(desk: DeskSimulator) -> None:
    day = pd.Timestamp("2026-06-10")
    alone = desk.prices(day, day).reset_index(drop=True)
    within = desk.prices(pd.Timestamp("2026-05-01"), pd.Timestamp("2026-07-01"))
    pd.testing.assert_frame_equal(
        within[within["price_date"].eq(day)].reset_index(drop=True), alone
    )
    fx_alone = desk.fx_rates(day, day)
    fx_within = desk.fx_rates(pd.Timestamp("2026-01-01"), pd.Timestamp("2026-12-31"))
    selected = fx_within[fx_within["rate_date"].eq(day)].reset_index(drop=True)
    pd.testing.assert_frame_equal(selected, fx_alone)


def test_prices_and_rates_cover_weekdays_with_plausible_levels(desk: DeskSimulator) -> None:
    marks = desk.prices(pd.Timestamp("2026-03-02"), pd.Timestamp("2026-03-08"))
    assert marks["price_date"].nunique() == 5
    assert len(marks) == 5 * len(desk.instruments())
    classes = desk.instruments().set_index("instrument_id")["asset_class"]
    equity = marks["instrument_id"].map(classes).str.startswith("equity")
    assert marks.loc[~equity, "price"].between(0.7, 1.3).all()
    assert marks.loc[equity, "price"].between(1, 2_000).all()
    fx = desk.fx_rates(pd.Timestamp("2026-03-02"), pd.Timestamp("2026-03-06"))
    rates = fx.groupby("currency")["usd_per_unit"]
    assert rates.min()["USD"] == rates.max()["USD"] == 1.0
    assert 0.9 < rates.mean()["EUR"] < 1.3 and 0.003 < rates.mean()["JPY"] < 0.01


def test_books_are_named_by_type_and_hold_for_the_regulatory_period() -> None:
    books = DeskSimulator().books()
    assert len(books) == 20 and books["book_id"].is_unique
    kind = books["book_id"].str.split("-").str[0]
    assert set(kind) == {"REPO", "REVREPO", "SECLEND", "MATCHED"}
    assert set(books["base_currency"]) == {"EUR", "USD", "GBP"}
    assert (books["holding_period_days"] == np.where(kind.eq("SECLEND"), 10, 5)).all()


def test_instruments_are_a_realistic_deterministic_mix() -> None:
    instruments = DeskSimulator().instruments()
    pd.testing.assert_frame_equal(instruments, DeskSimulator().instruments())
    assert len(instruments) == 2000 and instruments["instrument_id"].is_unique
    assert instruments["instrument_id"].str.fullmatch(r"[A-Z]{2}\d{10}").all()
    assert set(instruments["asset_class"]) == {
        "government_bond",
        "agency_bond",
        "corporate_bond",
        "covered_bond",
        "securitisation",
        "equity_main_index",
        "equity_other",
    }
    assert set(instruments["currency"]) == {"EUR", "USD", "GBP", "JPY"}
    govies = instruments[instruments["asset_class"].eq("government_bond")]
    assert govies["issuer_type"].eq("sovereign").all()
    corporate = instruments[instruments["asset_class"].eq("corporate_bond")]
    assert corporate["rating"].isna().any() and corporate["rating"].notna().mean() > 0.9
    equity = instruments["asset_class"].str.startswith("equity")
    assert instruments.loc[equity, "maturity_date"].isna().all()
    maturity = instruments.loc[~equity, "maturity_date"]
    assert maturity.notna().all() and maturity.max() < pd.Timestamp("2056-01-02")
    assert maturity.lt(pd.Timestamp("2026-11-01")).sum() > 0


def test_each_book_trades_its_own_subset_of_instruments() -> None:
    desk = DeskSimulator(n_books=4, n_instruments=500, instruments_per_book=50)
    trades = desk.trades(MONDAY, MONDAY + WEEK)
    per_book = trades.groupby("book_id")["instrument_id"].nunique()
    assert per_book.le(50).all() and per_book.gt(20).all()
