"""`desk backfill` restates stale days outside its range; business days follow DESK_TIMEZONE."""

import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from desk_pipeline.adapters.trade_sources import LandingFolderSource
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline_tests.builders import at, trade, write_landing_file, write_reference_files
from desk_pipeline_tests.e2e import driver
from desk_pipeline_tests.e2e.driver import run_desk

D1, D2, D3 = "2026-03-02", "2026-03-03", "2026-03-04"
LONDON = "Europe/London"


def desk_env(tmp_path: Path, **extra: str) -> tuple[dict, Path]:
    folder = tmp_path / "landing"
    write_reference_files(
        folder,
        instruments=["XS0001,Bund 2030,government_bond,sovereign,DE,AAA,2030-02-15,EUR"],
        prices=["XS0001,2026-01-02,10.0"],
        books=["B1,EUR,5"],
        fx_rates=["EUR,2026-01-02,1.1"],
    )
    home = tmp_path / "home"
    home.mkdir()
    env = driver.desk_env(
        home, DESK_TRADE_SOURCE=f"landing:{folder}", DESK_START_DATE="2026-03-01", **extra
    )
    return env, folder


def positions(env: dict, day: str) -> dict:
    out = run_desk(env, "positions", "--book", "B1", "--date", day, "--json").stdout
    return json.loads(out)


def test_a_backfill_of_a_later_day_restates_the_stale_days_before_it(tmp_path):
    env, folder = desk_env(tmp_path)
    write_landing_file(
        folder,
        "days.csv",
        [trade("T1", 100, 10.0, at=at(D1, "09:00")), trade("T2", 10, 12.0, at=at(D2, "09:00"))],
    )
    run_desk(env, "backfill", "--start", D1, "--end", D2)
    # The late trade arrives (a 10-minute tick would ingest it) after D1 and D2 were stored.
    late = write_landing_file(folder, "late.csv", [trade("LATE", 50, 8.0, at=at(D1, "15:00"))])
    repo = PositionRepository(f"sqlite:///{env['DAGSTER_HOME']}/warehouse.db")
    batch = LandingFolderSource(folder).read_file(late)
    repo.ingest(batch.source, batch.received, batch.trades, batch.rejected)
    repo.engine.dispose()

    doc = json.loads(run_desk(env, "backfill", "--start", D3, "--end", D3, "--json").stdout)
    # The run over D3 restates the stale days before it (its EOD step finds them stale).
    assert (doc["start"], doc["end"], doc["days"]) == (D3, D3, 1)
    assert [p["quantity"] for p in positions(env, D1)["positions"]] == [150.0]
    assert [p["quantity"] for p in positions(env, D2)["positions"]] == [160.0]


def test_dst_days_in_london_have_138_and_150_windows_and_23_and_25_hour_business_days():
    intraday = dg.TimeWindowPartitionsDefinition(
        cron_schedule="*/10 * * * *",
        fmt="%Y-%m-%d-%H:%M",
        start=pd.Timestamp("2026-03-01").to_pydatetime(),
        timezone=LONDON,
    )
    daily = dg.DailyPartitionsDefinition(start_date="2026-03-01", timezone=LONDON)
    for day, windows, hours in [("2026-03-29", 138, 23), ("2026-10-25", 150, 25)]:
        keys = intraday.get_partition_keys_in_range(
            dg.PartitionKeyRange(f"{day}-00:00", f"{day}-23:50")
        )
        assert len(keys) == windows, day
        window = daily.time_window_for_partition_key(day)
        length = pd.Timestamp(window.end) - pd.Timestamp(window.start)  # elapsed, not wall clock
        assert length == pd.Timedelta(hours=hours), day


@pytest.mark.parametrize(
    ("day", "day_end_utc"),
    [("2026-03-29", "2026-03-29 23:00"), ("2026-10-25", "2026-10-26 00:00")],
)
def test_a_dst_days_eod_covers_the_whole_local_day_in_desk_timezone(tmp_path, day, day_end_utc):
    env, folder = desk_env(tmp_path, DESK_TIMEZONE=LONDON)
    local = lambda d, hhmm: pd.Timestamp(f"{d} {hhmm}", tz=LONDON)  # noqa: E731
    next_day = (pd.Timestamp(day) + pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    rows = [
        trade("EARLY", 1, 10.0, at=local(day, "00:30")),
        trade("LATE", 10, 10.0, at=local(day, "23:30")),
        trade("NEXT", 100, 10.0, at=local(next_day, "00:30")),  # the next business day
    ]
    write_landing_file(folder, "dst.csv", rows)
    run_desk(env, "backfill", "--start", day, "--end", day)
    doc = positions(env, day)
    assert pd.Timestamp(doc["as_of"]) == pd.Timestamp(day_end_utc, tz="UTC")
    assert [p["quantity"] for p in doc["positions"]] == [11.0]


@pytest.mark.parametrize(
    ("days", "trades_at", "day_ends_utc", "quantities"),
    [
        # Azores 2026-03-29: 00:00 -01 jumps to 01:00 +00, so the 29th starts at 01:00 UTC.
        (
            ("2026-03-28", "2026-03-29"),
            ["2026-03-29 00:30", "2026-03-29 01:30"],  # 23:30 on the 28th, 01:30 on the 29th
            ["2026-03-29 01:00", "2026-03-30 00:00"],
            [[1.0], [11.0]],
        ),
        # Azores 2026-10-25: 01:00 +00 goes back to 00:00 -01; the 25th starts at the first
        # midnight and holds both 00:30s.
        (
            ("2026-10-24", "2026-10-25"),
            ["2026-10-24 23:30", "2026-10-25 00:30", "2026-10-25 01:30"],
            ["2026-10-25 00:00", "2026-10-26 01:00"],
            [[1.0], [111.0]],
        ),
    ],
)
def test_days_whose_midnight_the_clock_skips_or_repeats_are_backfilled_whole(
    tmp_path, days, trades_at, day_ends_utc, quantities
):
    # Their bounds raised (tz_localize of such a midnight): the whole range failed after three
    # retries with "Exceeded max_retries of 3".
    env, folder = desk_env(tmp_path, DESK_TIMEZONE="Atlantic/Azores")
    rows = [
        trade(f"T{i}", 10**i, 10.0, at=pd.Timestamp(when, tz="UTC"))
        for i, when in enumerate(trades_at)
    ]
    write_landing_file(folder, "midnight.csv", rows)
    run_desk(env, "backfill", "--start", days[0], "--end", days[-1])
    for day, end, held in zip(days, day_ends_utc, quantities, strict=True):
        doc = positions(env, day)
        assert pd.Timestamp(doc["as_of"]) == pd.Timestamp(end, tz="UTC"), day
        assert [p["quantity"] for p in doc["positions"]] == held, day
