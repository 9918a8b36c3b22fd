"""Reference data and marks: landing files as received, the warehouse tables, the assets."""

import dagster as dg
import pandas as pd

from desk_pipeline.adapters.haircut_schedules import load_schedule
from desk_pipeline.adapters.simulator import DeskSimulator
from desk_pipeline.adapters.trade_sources import LandingFolderSource
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.defs.end_of_day import restate_marked_days
from desk_pipeline.defs.reference.assets import PRICE_LOOKBACK
from desk_pipeline.domain.reference.validation import validate_reference
from desk_pipeline.domain.schema import QUARANTINE_DTYPES, empty_frame
from desk_pipeline.domain.validation.quarantine import UNREADABLE_COLUMN
from desk_pipeline_tests.builders import as_received, validated_reference
from desk_pipeline_tests.location import desk_assets, desk_resources

eod_positions, collateral_ranking, instruments, prices = desk_assets(
    "eod_positions", "collateral_ranking", "instruments", "prices"
)

DAY = pd.Timestamp("2026-03-04")


def instrument_rows(**changes: str) -> pd.DataFrame:
    row = {
        "instrument_id": "DE1",
        "name": "Bund",
        "asset_class": "government_bond",
        "issuer_type": "sovereign",
        "issuer": "Germany",
        "rating": "AAA",
        "maturity_date": "2033-02-15",
        "currency": "EUR",
    }
    equity = {
        "instrument_id": "EQ1",
        "name": "Equity",
        "asset_class": "equity_other",
        "issuer_type": "",
        "issuer": "",
        "rating": "",
        "maturity_date": "",
        "currency": "USD",
    }
    return pd.DataFrame([{**row, **changes}, equity], index=[1, 2])


def marks(*rows: tuple[str, str, float]) -> pd.DataFrame:
    return as_received(rows, ["instrument_id", "price_date", "price"])


def test_reference_rows_round_trip_through_the_warehouse_with_their_types(warehouse_url):
    repo = PositionRepository(warehouse_url)
    received = validate_reference(
        "landing",
        instruments=instrument_rows(),
        books=pd.DataFrame({"book_id": ["R1"], "base_currency": ["EUR"]}, index=[1]),
        prices=marks(("DE1", "2026-03-04", 0.98), ("EQ1", "2026-03-03", 150.0)),
        fx_rates=pd.DataFrame(
            {"currency": ["EUR"], "rate_date": ["2026-03-04"], "usd_per_unit": [1.08]}, index=[1]
        ),
    )
    written = repo.replace_reference(
        instruments=received.instruments,
        books=received.books,
        prices=received.prices,
        fx_rates=received.fx_rates,
    )
    assert written == {
        "instruments": 2,
        "books": 1,
        "prices": 2,
        "fx_rates": 1,
        "quarantined": 0,
        "mark_changes": 0,  # no EOD stored: no day read a mark yet
    }

    stored = repo.reference_as_of(DAY - pd.Timedelta(days=5), DAY)
    # Received rows keep their row numbers as index (validate); stored ones are numbered anew.
    pd.testing.assert_frame_equal(stored.instruments, received.instruments.reset_index(drop=True))
    pd.testing.assert_frame_equal(stored.books, received.books.reset_index(drop=True))
    pd.testing.assert_frame_equal(
        stored.prices, received.prices.sort_values("instrument_id", ignore_index=True)
    )
    pd.testing.assert_frame_equal(stored.fx_rates, received.fx_rates.reset_index(drop=True))


def test_a_new_row_replaces_the_stored_one_with_its_key_and_unmentioned_rows_stay(warehouse_url):
    repo = PositionRepository(warehouse_url)
    first = validate_reference("landing", instruments=instrument_rows(), prices=marks())
    repo.replace_reference(instruments=first.instruments)
    two_days = marks(("DE1", "2026-03-03", 0.97), ("DE1", "2026-03-04", 0.98))
    repo.replace_reference(prices=validate_reference("landing", prices=two_days).prices)

    downgraded = validate_reference("landing", instruments=instrument_rows(rating="BBB"))
    repo.replace_reference(instruments=downgraded.instruments.iloc[:1])
    repo.replace_reference(
        prices=validate_reference("landing", prices=marks(("DE1", "2026-03-04", 0.99))).prices
    )

    stored = repo.reference_as_of(DAY - pd.Timedelta(days=5), DAY)
    ratings = stored.instruments.set_index("instrument_id")["rating"]
    assert ratings.to_dict() == {
        "DE1": "BBB",
        "EQ1": None,
    }
    assert stored.prices["price"].tolist() == [0.97, 0.99]


def test_reference_as_of_returns_only_marks_dated_in_the_window(warehouse_url):
    repo = PositionRepository(warehouse_url)
    rows = marks(("DE1", "2026-01-31", 0.9), ("DE1", "2026-02-01", 0.91), ("DE1", "2026-03-05", 1))
    repo.replace_reference(prices=validate_reference("landing", prices=rows).prices)
    stored = repo.reference_as_of(pd.Timestamp("2026-02-01"), DAY)
    assert stored.prices["price_date"].tolist() == [pd.Timestamp("2026-02-01")]
    assert stored.books.empty and list(stored.books.columns) == [
        "book_id",
        "base_currency",
        "holding_period_days",
    ]


def test_quarantine_rows_of_one_file_content_are_written_once(warehouse_url):
    repo = PositionRepository(warehouse_url)
    bad = validate_reference("landing", prices=marks(("DE1", "2026-03-04", "n/a")))
    assert len(bad.quarantine) == 1
    assert repo.replace_reference(quarantined=bad.quarantine)["quarantined"] == 1
    assert repo.replace_reference(quarantined=bad.quarantine)["quarantined"] == 0
    other = validate_reference("landing", prices=marks(("DE1", "2026-03-04", "x")))
    assert repo.replace_reference(quarantined=other.quarantine)["quarantined"] == 1
    assert repo.replace_reference(quarantined=empty_frame(QUARANTINE_DTYPES)) == {
        "instruments": 0,
        "books": 0,
        "prices": 0,
        "fx_rates": 0,
        "quarantined": 0,
        "mark_changes": 0,
    }
    assert len(repo.quarantined()) == 2


def test_a_landing_folder_hands_reference_files_over_as_received(tmp_path):
    (tmp_path / "prices.csv").write_text(
        "Instrument_ID, price_date,price,comment\nDE1,2026-03-04,0.98,ok\nDE1,2099-01-01,n/a,\n",
        encoding="utf-8",
    )
    (tmp_path / "books.csv").write_bytes(b"\xff\xfe not utf-8 \x80")
    source = LandingFolderSource(tmp_path)

    raw = source.prices(DAY, DAY)
    assert raw.index.tolist() == [1, 2]
    assert raw.columns.tolist() == ["instrument_id", "price_date", "price", "comment"]
    assert raw["price"].tolist() == ["0.98", "n/a"]  # strings, whatever the window asks
    assert source.instruments().empty and source.fx_rates(DAY, DAY).empty
    assert UNREADABLE_COLUMN in source.books().columns
    assert "UTF-8" in source.books()[UNREADABLE_COLUMN].iloc[0]


def test_a_reference_file_naming_a_column_twice_is_quarantined_whole(tmp_path):
    # Read first-one-wins, "price" twice would have stored 0.98 and dropped 1.5 unseen.
    (tmp_path / "prices.csv").write_text(
        "instrument_id,price_date,price,price\nDE1,2026-03-04,0.98,1.5\n", encoding="utf-8"
    )
    for name in ["instruments.csv", "books.csv", "fx_rates.csv"]:
        (tmp_path / name).write_text("a, b ,B,a\n1,2,3,4\n", encoding="utf-8")
    source = LandingFolderSource(tmp_path)

    checked = validated_reference("landing", source, DAY)
    assert checked.prices.empty
    assert checked.quarantine["reason_code"].tolist() == ["unreadable_file"] * 4
    files = checked.quarantine["source"].str.split("#").str[0]
    reasons = checked.quarantine.set_index(files)["reason"]
    assert reasons["landing:prices.csv"] == "column names repeat (case-insensitive): ['price']"
    assert reasons["landing:books.csv"] == "column names repeat (case-insensitive): ['a', 'b']"


def test_the_reference_assets_store_the_simulator_marks_the_ranking_then_uses(
    sqlite_url, dagster_instance
):
    result = dg.materialize(
        [instruments, prices, eod_positions, collateral_ranking],
        partition_key="2026-03-04",
        resources=desk_resources(warehouse_url=sqlite_url),
        instance=dagster_instance,
    )
    assert result.success
    desk = DeskSimulator()
    repo = PositionRepository(sqlite_url)
    stored = repo.reference_as_of(DAY - PRICE_LOOKBACK, DAY)
    assert len(stored.instruments) == len(desk.instruments())
    assert len(stored.books) == len(desk.books())
    assert len(stored.prices) == len(desk.prices(DAY - PRICE_LOOKBACK, DAY))
    # The prices step also records the days it restated (eod_valuation is not in this run).
    (stored_prices,) = [
        m
        for m in result.asset_materializations_for_node("prices")
        if m.asset_key == dg.AssetKey("prices")
    ]
    metadata = stored_prices.metadata
    assert metadata["dagster/row_count"].value == len(stored.prices)
    assert metadata["quarantined"].value == 0
    # The run stores the marks before its EODs: none is late for them, none is recorded and
    # confirmed (every one of the 31 days' marks was, when the EOD step ran first).
    assert metadata["mark_changes"].value == 0

    book = desk.books()["book_id"].iloc[0]
    ranking = repo.ranking(book, "2026-03-04")
    assert len(ranking) > 0 and ranking["eligible"].any()
    assert not ranking["reason"].fillna("").str.contains("unknown_instrument|no_price").any()

    shown = result.asset_materializations_for_node("collateral_ranking")[0].metadata
    assert shown["eligible_items"].value + shown["ineligible_items"].value == (
        shown["dagster/row_count"].value
    )
    rows = shown["top_10"].value.splitlines()
    assert rows[0] == "2026-03-04: top 10 lendable values per currency"
    eligible = pd.concat(
        [repo.ranking(b, "2026-03-04") for b in desk.books()["book_id"]], ignore_index=True
    )
    eligible = eligible[eligible["eligible"].astype(bool)].merge(
        desk.books()[["book_id", "base_currency"]], on="book_id"
    )
    # Values of books in different base currencies are never compared: a top 10 per currency.
    currencies = sorted(eligible["base_currency"].unique())
    table = rows[4:]
    assert len(table) == sum(min(10, (eligible["base_currency"] == c).sum()) for c in currencies)
    for ccy in currencies:
        own = [r for r in table if r.startswith(f"| {ccy} |")]
        top = eligible[eligible["base_currency"] == ccy].sort_values("value").iloc[-1]
        assert own[0].startswith(f"| {ccy} | {top['book_id']} | {top['instrument_id']} | 1 |")
        assert own[0].endswith(f"| {top['value']:,.2f} {ccy} |")
    assert shown[f"lendable_value_{currencies[0]}"].value > 0


def test_a_corrected_mark_is_recorded_flags_its_days_and_is_confirmed_once_restated(
    warehouse_url, dagster_instance
):
    result = dg.materialize(
        [instruments, prices, eod_positions, collateral_ranking],
        partition_key="2026-03-04",
        resources=desk_resources(warehouse_url=warehouse_url),
        instance=dagster_instance,
    )
    assert result.success
    repo = PositionRepository(warehouse_url)
    assert repo.days_stale_by_marks() == ([], [])
    book = DeskSimulator().books()["book_id"].iloc[0]
    held = repo.ranking(book, "2026-03-04").dropna(subset=["price"]).iloc[0]
    stored = repo.reference_as_of(DAY, DAY).prices
    mark = stored[stored["instrument_id"] == held["instrument_id"]].iloc[[-1]]
    corrected = mark.assign(price=mark["price"] * 2)

    assert repo.replace_reference(prices=corrected)["mark_changes"] == 1
    assert repo.replace_reference(prices=corrected)["mark_changes"] == 0  # the same again
    days, ids = repo.days_stale_by_marks()
    assert days == ["2026-03-04"] and len(ids) == 1

    assert restate_marked_days(repo, load_schedule()) == ["2026-03-04"]
    assert repo.days_stale_by_marks() == ([], [])
    item = repo.ranking(book, "2026-03-04").set_index("instrument_id").loc[held["instrument_id"]]
    assert item["price"] == corrected["price"].iloc[0]
