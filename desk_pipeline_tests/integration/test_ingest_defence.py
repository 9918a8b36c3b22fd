"""Landing files reach the warehouse whole or not at all; every received row is accounted for."""

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.trade_sources import LandingFolderSource
from desk_pipeline.adapters.warehouse import PositionRepository, WarehouseError
from desk_pipeline.defs.resources import (
    CalendarResource,
    HaircutScheduleResource,
    LandingFolderTradeSource,
    WarehouseResource,
)
from desk_pipeline.domain.schema import QUARANTINE_DTYPES, empty_frame
from desk_pipeline_tests.builders import make_trades, trade, write_landing_file
from desk_pipeline_tests.location import desk_assets

[trades_asset] = desk_assets("trades")

TRADE_TABLES = (
    t.trade_versions,
    t.current_trades,
    t.trading_books,
    t.quarantine,
    t.ingested_batches,
    t.late_changes,
    t.source_watermarks,
)


NO_REJECTS = empty_frame(QUARANTINE_DTYPES)


@pytest.fixture
def repo(warehouse_url) -> PositionRepository:
    repository = PositionRepository(warehouse_url)
    yield repository
    repository.engine.dispose()


def row_counts(repo: PositionRepository) -> dict[str, int]:
    with repo.engine.connect() as conn:
        return {
            table.name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
            for table in TRADE_TABLES
        }


def test_a_quarantine_row_failing_after_the_trades_were_written_rolls_the_trades_back(repo):
    rejected = pd.DataFrame(
        {
            "source": ["landing:x.csv"],
            "row_number": [2],
            "trade_id": [None],  # NOT NULL in the quarantine table, written after the trades
            "reason_code": ["price_not_numeric"],
            "reason": ["price is not a number"],
            "raw": ["{}"],
        }
    ).astype(dict(QUARANTINE_DTYPES))
    batch = make_trades([trade("T1", 1, 10.0), trade("T2", 2, 10.0, 1)])
    with pytest.raises(WarehouseError):
        repo.ingest("landing:x.csv", 3, batch, rejected, watermark=("sql:u#trades", 3))
    assert set(row_counts(repo).values()) == {0}


@pytest.mark.postgres
def test_an_over_long_id_slipped_past_validation_fails_the_whole_file_on_postgresql(pg_url):
    repo = PositionRepository(pg_url)
    try:
        repo.ingest("landing:old.csv", 1, make_trades([trade("OLD-1", 5, 10.0)]), NO_REJECTS)
        before = row_counts(repo)
        # 1,500 rows go in several INSERT round trips; row 1,200 breaks varchar(64).
        batch = make_trades([trade(f"T{i}", 1, 10.0, i / 100) for i in range(1500)])
        batch.loc[1200, "instrument_id"] = "X" * 65
        with pytest.raises(WarehouseError, match="too long"):
            repo.ingest("landing:long.csv", 1500, batch, NO_REJECTS)
        assert row_counts(repo) == before
        assert list(repo.all_trade_versions()["trade_id"]) == ["OLD-1"]
    finally:
        repo.engine.dispose()


def test_resending_a_landing_file_changes_nothing(repo, tmp_path):
    good = [trade("T1", 100, 10.0), trade("T2", -5, 11.0, 3)]
    path = write_landing_file(tmp_path / "in", "a.csv", [*good, dict(good[0], trade_id="")])
    source = LandingFolderSource(path.parent)
    batch = source.read_file(path)
    first = repo.ingest(batch.source, batch.received, batch.trades, batch.rejected)
    after_first = row_counts(repo)
    again = source.read_file(path)
    second = repo.ingest(again.source, again.received, again.trades, again.rejected)
    assert (first.received, first.accepted, first.quarantined) == (3, 2, 1)
    assert second.already_ingested and row_counts(repo) == after_first


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"trade_id,book_id\n\xff\xfe\x00bad", "not UTF-8"),
        ("trade_id,book_id\nT1,caf\xe9\n".encode("latin-1"), "not UTF-8"),
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (b"trade_id,TRADE_ID,book_id\n1,2,3\n", "column names repeat"),
    ],
)
def test_an_unreadable_or_wrongly_encoded_file_is_quarantined_whole(tmp_path, content, reason):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    batch = LandingFolderSource(tmp_path).read_file(path)
    assert batch.trades.empty and batch.received == 1
    assert list(batch.rejected["reason_code"]) == ["unreadable_file"]
    assert list(batch.rejected["row_number"]) == [0]
    assert reason in batch.rejected["reason"].iloc[0]


TRADE_HEADER = "trade_id,book_id,instrument_id,quantity,price,trade_time"
GOOD = "T1,B1,ISIN-1,10,99.5,2026-03-02T09:00:00Z"


@pytest.mark.parametrize(
    ("lines", "ragged"),
    [
        ([f"{GOOD},extra", "T2,B1,ISIN-1,5,99.5,2026-03-02T10:00:00Z"], {1: 7}),  # one too many
        (["T0,B1", GOOD], {}),  # too few: pandas reads the rest as missing, the rules refuse
        ([GOOD, '"T2,B1,ISIN-1,5,99.5,2026-03-02T10:00:00Z'], {2: 1}),  # a quote left open
        # A field over Python csv's default limit (131,072 characters) in a ragged row: the
        # record-by-record read raised "field larger than field limit" and stopped the run.
        ([GOOD, f"T2,B1,{'X' * 200_000},5,99.5,2026-03-02T10:00:00Z,,"], {2: 8}),
        # Blank lines are skipped, as pandas skips them: rows are numbered without them.
        (
            [GOOD, "", "T2,B1,ISIN-1,5,99.5,2026-03-02T10:00:00Z,,", GOOD.replace("T1", "T3")],
            {2: 8},
        ),
    ],
)
def test_a_row_that_does_not_fit_the_header_is_quarantined_alone_and_the_others_flow(
    tmp_path, lines, ragged
):
    # The file was quarantined whole ("Expected 6 fields in line 3, saw 8"): one trailing
    # comma held back every trade in it.
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join([TRADE_HEADER, *lines]) + "\n", encoding="utf-8")
    batch = LandingFolderSource(tmp_path).read_file(path)
    wrong = batch.rejected[batch.rejected["reason_code"] == "wrong_field_count"]
    assert dict(zip(wrong["row_number"], wrong["reason"], strict=True)) == {
        row: f"{fields} fields where the header has 6: its values cannot be placed"
        for row, fields in ragged.items()
    }
    rows = len([line for line in lines if line])
    assert batch.received == rows
    assert len(batch.trades) + len(batch.rejected) == rows
    assert set(batch.trades["trade_id"]) <= {"T1", "T2", "T3"}


def test_a_utf8_file_with_a_byte_order_mark_is_read(tmp_path):
    write_landing_file(tmp_path, "plain.csv", [trade("T1", 1, 10.0)])
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (tmp_path / "plain.csv").read_bytes())
    batch = LandingFolderSource(tmp_path).read_file(path)
    assert list(batch.trades["trade_id"]) == ["T1"] and batch.rejected.empty


def test_the_trades_asset_reports_received_accepted_and_quarantined_per_file(
    sqlite_url, tmp_path, dagster_instance
):
    folder = tmp_path / "landing"
    write_landing_file(folder, "a.csv", [trade("A1", 1, 10.0), trade("A2", 1, 10.0, 1)])
    write_landing_file(folder, "b.csv", [trade("B1", 1, 10.0), dict(trade("B2", 1, 1), price="")])
    (folder / "c.csv").write_bytes(b"\xff\xfe garbage")
    result = dg.materialize(
        [trades_asset],
        partition_key="2026-03-02-09:00",
        resources={
            "warehouse": WarehouseResource(url=sqlite_url),
            "trade_source": LandingFolderTradeSource(folder=str(folder)),
            "calendar": CalendarResource(),
            "haircuts": HaircutScheduleResource(),
        },
        instance=dagster_instance,
    )
    metadata = result.asset_materializations_for_node("trades")[0].metadata
    per_file = {b["source"].split("#")[0]: b for b in metadata["batches"].value}
    assert {k: (v["received"], v["accepted"], v["quarantined"]) for k, v in per_file.items()} == {
        "landing:a.csv": (2, 2, 0),
        "landing:b.csv": (2, 1, 1),
        "landing:c.csv": (1, 0, 1),
    }
    assert all(b["received"] == b["accepted"] + b["quarantined"] for b in per_file.values())
    assert (metadata["received"].value, metadata["accepted"].value) == (5, 3)
