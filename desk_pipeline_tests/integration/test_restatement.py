"""Restatement of stale EODs (sensor and `desk backfill`), idempotent backfills, housekeeping."""

import json

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from desk_pipeline.adapters import tables as t
from desk_pipeline.adapters.trade_sources import LandingFolderSource
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.definitions import build_definitions
from desk_pipeline.defs.positions.sensors import restatement_request
from desk_pipeline.defs.resources import (
    CalendarResource,
    HaircutScheduleResource,
    LandingFolderTradeSource,
    WarehouseResource,
    resources_from,
)
from desk_pipeline_tests.builders import at, trade, write_landing_file, write_reference_files
from desk_pipeline_tests.location import desk_assets, desk_settings
from desk_pipeline_tests.reference import reference_positions

[eod_positions] = desk_assets("eod_positions")

D1, D2, D3 = "2026-03-02", "2026-03-03", "2026-03-04"


def desk_defs(url: str, landing, retention_days: int = 7) -> dg.Definitions:
    """The code location's assets, checks and jobs over this test's warehouse and landing folder."""
    settings = desk_settings(intraday_retention_days=retention_days)
    defs = build_definitions(settings)
    resources = {
        **resources_from(settings),
        "warehouse": WarehouseResource(url=url, intraday_retention_days=retention_days),
        "trade_source": LandingFolderTradeSource(folder=str(landing)),
    }
    return dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        sensors=[defs.resolve_sensor_def("restatement_sensor")],
        resources=resources,
    )


def run_days(defs: dg.Definitions, instance, start: str, end: str, **tags: str):
    return defs.resolve_job_def("daily_job").execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
            **tags,
        },
    )


def eods(url: str, landing, instance, start: str, end: str, **tags: str):
    """eod_positions alone over a range: the daily job's first step, without the ranking's cost."""
    return dg.materialize(
        [eod_positions],
        instance=instance,
        resources={
            "warehouse": WarehouseResource(url=url),
            "trade_source": LandingFolderTradeSource(folder=str(landing)),
            "calendar": CalendarResource(timezone="UTC"),
            "haircuts": HaircutScheduleResource(),
        },
        tags={
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
            **tags,
        },
    )


def ingest_file(repo: PositionRepository, path) -> None:
    batch = LandingFolderSource(path.parent).read_file(path)
    repo.ingest(batch.source, batch.received, batch.trades, batch.rejected)


def evaluate_sensor(defs: dg.Definitions, instance):
    context = dg.build_sensor_context(instance=instance, resources=defs.resources)
    return defs.resolve_sensor_def("restatement_sensor")(context)


def assert_eods_match_reference(repo: PositionRepository, rows: list[dict]) -> None:
    headers = repo.eod_headers()
    assert len(headers)
    for h in headers.itertuples():
        as_of = pd.Timestamp(h.as_of_us * 1000, tz="UTC")
        expected = {
            k[1]: p for k, p in reference_positions(rows, as_of).items() if k[0] == h.book_id
        }
        stored = repo.eod(h.book_id, h.business_date)[1].set_index("instrument_id")
        assert set(stored.index) == set(expected), (h.book_id, h.business_date)
        for instrument, ref in expected.items():
            assert stored.loc[instrument, "quantity"] == pytest.approx(ref.quantity)
            assert stored.loc[instrument, "avg_price"] == pytest.approx(ref.avg_price)
            assert stored.loc[instrument, "realized_pnl"] == pytest.approx(ref.realized_pnl)


@pytest.fixture
def landing(tmp_path):
    folder = tmp_path / "landing"
    # Two government bonds in EUR, marked daily: enough for collateral_ranking to run.
    write_reference_files(
        folder,
        instruments=[
            "XS0001,Bund 2030,government_bond,sovereign,DE,AAA,2030-02-15,EUR",
            "XS0002,OAT 2031,government_bond,sovereign,FR,AA,2031-05-25,EUR",
        ],
        prices=["XS0001,2026-01-02,10.0", "XS0002,2026-01-02,50.0"],
        books=["B1,EUR,5", "B2,EUR,5"],
        fx_rates=["EUR,2026-01-02,1.1"],
    )
    rows = [
        trade("T1", 100, 10.0, book="B1", at=at(D1, "09:00")),
        trade("T2", -40, 12.0, book="B1", at=at(D2, "09:00")),
        trade("T3", 5, 50.0, book="B2", instrument="XS0002", at=at(D2, "10:00")),
        trade("T4", 10, 11.0, book="B1", at=at(D3, "09:00")),
    ]
    write_landing_file(folder, "day.csv", rows)
    return folder, rows


def test_a_late_trade_is_restated_by_one_sensor_backfill_tagged_with_the_trade(
    sqlite_url, landing, dagster_instance
):
    folder, rows = landing
    defs = desk_defs(sqlite_url, folder)
    repo = PositionRepository(sqlite_url)
    assert run_days(defs, dagster_instance, D1, D3).success
    assert isinstance(evaluate_sensor(defs, dagster_instance), dg.SkipReason)
    before = repo.eod("B1", D2)[0]["snapshot_id"]

    late = [trade("LATE-1", 30, 9.0, book="B1", at=at(D1, "15:00"))]
    ingest_file(repo, write_landing_file(folder, "late.csv", late))
    result = evaluate_sensor(defs, dagster_instance)
    (request,) = result.run_requests
    assert request.tags["dagster/asset_partition_range_start"] == D1
    assert request.tags["dagster/asset_partition_range_end"] == D3
    assert request.tags["desk/restatement_trades"] == "LATE-1"
    assert request.tags["desk/stale_books"] == "B1"
    # The same staleness keeps the same run key: the daemon requests it once.
    assert evaluate_sensor(defs, dagster_instance).run_requests[0].run_key == request.run_key

    run = defs.resolve_job_def("daily_job").execute_in_process(
        instance=dagster_instance, tags=request.tags
    )
    assert run.success
    assert not repo.eod_headers()["stale"].any()
    assert isinstance(evaluate_sensor(defs, dagster_instance), dg.SkipReason)
    assert_eods_match_reference(repo, rows + late)
    restated = repo.eod("B1", D2)[0]
    assert restated["snapshot_id"] != before and restated["as_of"] == at(D3, "00:00")
    events = [json.loads(p) for p in repo.pending_events()["payload"]]
    b1_restated = {(e["business_date"], e["restatement"]) for e in events if e["book_id"] == "B1"}
    assert {(D1, True), (D2, True), (D3, True)} <= b1_restated
    # B2 was not touched by the late trade: recomputed identically, nothing re-announced.
    assert [e["restatement"] for e in events if e["book_id"] == "B2"] == [False, False]
    checks = {e.check_name: e.passed for e in run.get_asset_check_evaluations()}
    assert checks["eod_matches_recomputation"] and checks["one_eod_per_book_day"]


def test_a_new_late_trade_after_a_restatement_gets_a_new_run_key(
    sqlite_url, landing, dagster_instance
):
    folder, _ = landing
    defs = desk_defs(sqlite_url, folder)
    repo = PositionRepository(sqlite_url)
    eods(sqlite_url, folder, dagster_instance, D1, D3)
    ingest_file(repo, write_landing_file(folder, "late1.csv", [trade("L1", 1, 9.0, book="B1")]))
    first = evaluate_sensor(defs, dagster_instance).run_requests[0]
    eods(sqlite_url, folder, dagster_instance, first.tags["desk/restatement_days"][:10], D3)
    late = [trade("L2", 1, 9.0, book="B2", instrument="XS0002", at=at(D2, "23:00"))]
    ingest_file(repo, write_landing_file(folder, "late2.csv", late))
    second = evaluate_sensor(defs, dagster_instance).run_requests[0]
    assert second.run_key != first.run_key
    assert second.tags["desk/restatement_days"] == f"{D2}..{D3}"
    assert second.tags["desk/restatement_trades"] == "L2"


def test_an_amendment_that_changes_no_position_still_clears_the_staleness(
    sqlite_url, landing, dagster_instance
):
    folder, rows = landing
    defs = desk_defs(sqlite_url, folder)
    repo = PositionRepository(sqlite_url)
    eods(sqlite_url, folder, dagster_instance, D1, D3)
    # A new version with the same economics: the recomputation finds identical positions.
    same = [dict(rows[0], version=2, status="AMEND")]
    ingest_file(repo, write_landing_file(folder, "amend.csv", same))
    assert repo.eod_headers()["stale"].any()
    request = evaluate_sensor(defs, dagster_instance).run_requests[0]
    assert eods(sqlite_url, folder, dagster_instance, D1, D3, **request.tags).success
    assert not repo.eod_headers()["stale"].any()


def test_the_restatement_tags_truncate_a_long_list_of_trades():
    headers = pd.DataFrame(
        {
            "book_id": ["B1"],
            "business_date": [D1],
            "snapshot_id": ["s1"],
            "as_of_us": [10],
            "computed_at_us": [5],
            "stale": [True],
        }
    )
    ids = ",".join(f"TRADE-{i:05d}" for i in range(1000))
    late_changes = pd.DataFrame(
        {"book_id": ["B1"], "from_time_us": [1], "arrived_at_us": [6], "trade_ids": [ids]}
    )
    tags = restatement_request(headers, late_changes).tags
    assert len(tags["desk/restatement_trades"]) <= 500
    assert tags["desk/restatement_trades"].startswith("TRADE-00000,TRADE-00001,")
    assert tags["desk/restatement_trades"].endswith("(truncated)")


def test_a_backfill_overlapping_stored_days_rewrites_and_announces_nothing_twice(
    sqlite_url, landing, dagster_instance
):
    folder, rows = landing
    repo = PositionRepository(sqlite_url)
    eods(sqlite_url, folder, dagster_instance, D1, D2)
    first = repo.eod_headers().set_index(["book_id", "business_date"])["snapshot_id"]
    events = len(repo.pending_events())
    assert eods(sqlite_url, folder, dagster_instance, D1, D3).success
    again = repo.eod_headers().set_index(["book_id", "business_date"])["snapshot_id"]
    assert again.loc[first.index].equals(first)
    # Only the new day D3 (books B1 and B2) was announced.
    assert len(repo.pending_events()) == events + 2
    assert eods(sqlite_url, folder, dagster_instance, D1, D3).success
    assert len(repo.pending_events()) == events + 2
    assert_eods_match_reference(repo, rows)


def test_a_long_backfill_reports_progress_per_chunk_of_days_in_the_run_logs(
    sqlite_url, landing, dagster_instance
):
    folder, _ = landing
    result = eods(sqlite_url, folder, dagster_instance, "2026-02-01", "2026-03-12")
    assert result.success
    messages = [
        r.user_message
        for r in dagster_instance.all_logs(result.run_id)
        if "eod_positions: days" in r.user_message
    ]
    assert messages == [
        "eod_positions: days 2026-02-01..2026-03-03 stored (31 of 40 days), 3 EODs written so far",
        "eod_positions: days 2026-03-04..2026-03-12 stored (40 of 40 days), 21 EODs written so far",
    ]


def test_intraday_snapshots_older_than_the_retention_are_purged_and_eods_kept(
    sqlite_url, landing, dagster_instance
):
    folder, _ = landing
    defs = desk_defs(sqlite_url, folder, retention_days=7)
    repo = PositionRepository(sqlite_url)
    job = defs.resolve_job_def("intraday_job")
    eods(sqlite_url, folder, dagster_instance, D1, D1)
    for key in ["2026-03-02-09:00", "2026-03-02-09:20", "2026-03-09-09:20"]:
        assert job.execute_in_process(instance=dagster_instance, partition_key=key).success
    with repo.engine.connect() as conn:
        windows = conn.execute(sa.select(t.intraday_windows.c.window_end_us)).scalars().all()
        rows = conn.execute(sa.select(t.intraday_positions.c.window_end_us)).scalars().all()
    ends = sorted(pd.Timestamp(us * 1000, tz="UTC") for us in windows)
    # The last tick ends 2026-03-09 09:30: windows ending before 2026-03-02 09:30 are gone.
    assert ends == [at("2026-03-02", "09:30"), at("2026-03-09", "09:30")]
    assert min(rows) >= int(at("2026-03-02", "09:30").value // 1000)
    assert repo.eod("B1", D1) is not None


def test_cancelling_every_trade_of_a_book_restates_its_eods_to_no_positions(
    sqlite_url, landing, dagster_instance
):
    folder, rows = landing
    repo = PositionRepository(sqlite_url)
    eods(sqlite_url, folder, dagster_instance, D1, D3)
    cancel = [dict(rows[2], version=2, status="CANCEL")]  # B2's only trade
    ingest_file(repo, write_landing_file(folder, "cancel.csv", cancel))
    request = restatement_request(repo.eod_headers(), repo.late_changes())
    assert request.tags["desk/stale_books"] == "B2"
    start, end = request.tags["desk/restatement_days"].split("..")
    assert eods(sqlite_url, folder, dagster_instance, start, end).success
    assert not repo.eod_headers()["stale"].any()
    assert repo.eod("B2", D2)[1].empty
