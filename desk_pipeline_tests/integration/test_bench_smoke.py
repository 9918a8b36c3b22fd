"""The benchmark at smoke size: its own figures are consistent (not how fast they are)."""

import json
import statistics

import dagster as dg
import pandas as pd
import pytest
from dagster._core.execution.api import create_execution_plan

from benchmarks import backfill_profile, bench, tick_e2e
from desk_pipeline.adapters.simulator import DeskSimulator
from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.domain.schema import POSITION_STATE_DTYPES, conform
from desk_pipeline_tests.builders import with_micro_units
from desk_pipeline_tests.location import desk_definitions

# One worker runs the module: the smoke run is a module fixture, built once.


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, pg_engine) -> dict:
    """One smoke run of every section on SQLite and PostgreSQL, and the JSON it wrote."""
    out = tmp_path_factory.mktemp("bench")
    results = bench.main(["--smoke", "--out-dir", str(out), "--name", "smoke"])
    return {"results": results, "file": json.loads((out / "smoke.json").read_text())}


@pytest.mark.postgres
def test_the_benchmark_writes_its_figures_and_the_machine_to_json(smoke):
    written = smoke["file"]
    assert written["name"] == "smoke"
    assert {"engine", "tick", "tick-e2e", "backfill", "read"} <= set(written)
    machine = written["machine"]
    assert machine["cores"] >= 1 and machine["ram_gb"] > 0
    for key in ("cpu", "python", "numpy", "pandas", "numba", "sqlite", "postgresql"):
        assert machine[key], key


@pytest.mark.postgres
def test_the_engine_agrees_with_the_seed_loop_and_reports_both_ratios(smoke):
    engine = smoke["results"]["engine"]
    for label in ("sparse", "dense"):
        run = engine[label]
        assert run["trades"] == bench.SMOKE.engine_trades
        assert sum(run["trade_kinds"].values()) == run["trades"]
        # Ids read through the warehouse's keys (categoricals) and object ids: the same answer,
        # each with its own ratios.
        for figures in (run, run["object_ids"]):
            assert figures["engine_matches_seed"] and figures["engine_quantity_matches_groupby"]
            assert figures["keys"] == run["keys"]
            assert figures["engine_vs_seed"] == pytest.approx(
                run["seed_loop_s"] / figures["engine_s"]
            )
            assert figures["engine_time_vs_groupby"] == pytest.approx(
                figures["engine_s"] / figures["groupby_s"]
            )
            # The floor reads the same trades whatever the ids: one floor, two ratios.
            assert figures["engine_time_vs_floor"] == pytest.approx(
                figures["engine_s"] / run["floor_s"]
            )
            profile = figures["engine_profile_s"]
            assert {"_apply_trades", "_keys", "_roll"} <= set(profile)
            assert list(profile.values()) == sorted(profile.values(), reverse=True)
        assert run["floor_matches_groupby"]
    # The dense set exercises every branch of the average-cost rule, many times.
    assert min(engine["dense"]["trade_kinds"].values()) > 100
    incremental = engine["incremental"]
    for figures in (incremental, incremental["object_ids"]):
        assert figures["positions_out"] == incremental["open_positions"]


@pytest.mark.postgres
def test_every_tick_snapshots_every_traded_key_of_its_warehouse(smoke):
    for database in ("sqlite", "postgresql"):
        rows = smoke["results"]["tick"][database]
        assert [r["booked_before"] for r in rows] == list(bench.SMOKE.tick_booked)
        # The previous day's EOD holds every traded key: each tick writes the same snapshot size.
        keys = bench.SMOKE.books * bench.SMOKE.instruments_per_book
        for row in rows:
            assert row["opening_positions"] == row["snapshot_rows"] == keys
        assert rows[0]["vs_smallest"] == 1.0


def _steps(job: dg.JobDefinition) -> int:
    return len(create_execution_plan(job).step_keys_to_execute)


@pytest.mark.postgres
def test_each_launched_tick_and_eod_refresh_ran_every_step_of_its_job(smoke):
    defs = desk_definitions()
    steps = {
        "tick": _steps(defs.resolve_job_def("intraday_job")),
        # The automation sensor's run: the implicit asset job, subset to the EOD refresh.
        "eod_refresh": _steps(
            defs.resolve_implicit_global_asset_job_def().get_subset(
                asset_selection={dg.AssetKey(key) for key in tick_e2e.EOD_REFRESH}
            )
        ),
    }
    for database in ("sqlite", "postgresql"):
        e2e = smoke["results"]["tick-e2e"][database]
        assert set(e2e["desks"]) == {"current"} and e2e["speedup"] == {}
        for kind in ("tick", "eod_refresh"):
            figures = e2e["desks"]["current"][kind]
            runs = figures["runs"]
            assert len(runs) == bench.SMOKE.tick_e2e_repeats
            for run in runs:
                assert run["status"] == "SUCCESS" and run["steps"] == steps[kind]
                assert run["wall_s"] == pytest.approx(run["startup_s"] + run["worker_s"])
                assert run["startup_s"] > 0 and run["worker_s"] > 0
                # The run worker's CPU is counted: it imports Dagster and the definitions.
                assert run["cpu_s"] > 0 and run["load_1m"] >= 0
            assert figures["wall_s_median"] == statistics.median(r["wall_s"] for r in runs)
        # The unmeasured tick and refresh before them (numba compiles what it had not cached).
        assert [r["steps"] for r in e2e["desks"]["current"]["warm_up"]] == list(steps.values())
        tick, refresh = (e2e["desks"]["current"][k]["runs"] for k in ("tick", "eod_refresh"))
        # Each refresh is of the day of the window its tick snapshot.
        assert [t["partition"][:10] for t in tick] == [r["partition"] for r in refresh]


@pytest.mark.postgres
def test_the_backfill_stores_every_simulated_trade_and_one_eod_per_book_day(smoke):
    size = bench.SMOKE
    for database in ("sqlite", "postgresql"):
        (run,) = smoke["results"]["backfill"][database]
        simulator = DeskSimulator(
            n_books=size.books,
            n_instruments=size.instruments,
            trades_per_day=size.trades_per_day,
            instruments_per_book=size.instruments_per_book,
        )
        start = pd.Timestamp(run["start"], tz="UTC")
        end = pd.Timestamp(run["end"], tz="UTC") + pd.Timedelta(days=1)
        simulated = simulator.trades(start, end)
        assert run["rows"]["trade_versions"] == len(simulated)
        assert run["rows"]["current_trades"] == simulated["trade_id"].nunique()
        assert run["rows"]["eod_snapshots"] <= size.books * run["calendar_days"]
        assert run["rows"]["eod_snapshots"] >= size.books  # every book has an EOD by the end
        assert run["rows_written"] == sum(run["rows"].values())
        assert run["peak_rss_mb"] > 0 and run["runs"] == 1


@pytest.mark.postgres
def test_reads_are_timed_over_the_requested_number_of_calls(smoke):
    for database in ("sqlite", "postgresql"):
        read = smoke["results"]["read"][database]
        for figures in read.values():
            assert figures["calls"] == bench.SMOKE.read_calls
            assert figures["p50_ms"] <= figures["p95_ms"] <= figures["max_ms"]
        assert read["all_books_latest"]["rows"] > 0


@pytest.mark.postgres
def test_latest_eods_returns_each_books_most_recent_stored_day(warehouse_url):
    repo = PositionRepository(warehouse_url)
    rows = []
    for book, day, hour, quantity in (
        ("B1", "2026-03-02", 20, 10.0),
        ("B1", "2026-03-03", 20, 20.0),
        ("B2", "2026-03-02", 20, 30.0),
    ):
        rows.append(
            {
                "business_date": day,
                "as_of": pd.Timestamp(f"{day} {hour}:00", tz="UTC"),
                "book_id": book,
                "instrument_id": "I1",
                "quantity": quantity,
                "avg_price": 1.0,
                "realized_pnl": 0.0,
            }
        )
    stored = with_micro_units(pd.DataFrame(rows))
    repo.keep_last_eod(stored, read_at_us=1)
    latest = repo.latest_eods()
    assert latest[["book_id", "business_date"]].to_numpy().tolist() == [
        ["B1", "2026-03-03"],
        ["B2", "2026-03-02"],
    ]
    assert latest["quantity"].tolist() == [20.0, 30.0]
    pd.testing.assert_frame_equal(
        conform(latest, POSITION_STATE_DTYPES), conform(stored.iloc[[1, 2]], POSITION_STATE_DTYPES)
    )


def test_a_profiled_backfill_charges_its_cpu_time_to_groups_and_prices_each_kind_of_day(
    tmp_path, capsys
):
    argv = ["--smoke", "--sections", "backfill", "--databases", "sqlite", "--profile"]
    results = bench.main([*argv, "--out-dir", str(tmp_path), "--name", "profile"])
    (run,) = results["backfill"]["sqlite"]
    profile = run["profile"]
    groups = profile["groups"]
    # Every main-thread sample is charged; waiting (I/O, a busy CPU) is the rest of the wall.
    assert sum(groups.values()) == pytest.approx(profile["cpu_s"])
    assert profile["waited_s"] == pytest.approx(profile["wall_s"] - profile["cpu_s"])
    assert profile["samples"] > 0 and profile["cpu_s"] > 0
    assert groups[backfill_profile.STARTUP] > 0
    assert groups["ingest (source -> trade tables)"] > 0
    probe = json.loads((tmp_path / "profile.json").read_text())["backfill_probe"]["sqlite"]
    assert list(probe["ranges"]) == ["mon_fri", "mon_sun", "mon_next_fri"]
    # A discarded warm-up run, then every range repeated, interleaved, each run profiled.
    assert probe["warm_up"]["range"] == backfill_profile.WARM_UP_RANGE
    assert probe["order"] == backfill_profile.probe_order(bench.SMOKE.probe_repeats)
    for label, profiles in probe["runs"].items():
        first, last = (pd.Timestamp(d) for d in probe["ranges"][label])
        assert first.day_name() == "Monday" and last.day_name() in {"Friday", "Sunday"}
        assert len(profiles) == bench.SMOKE.probe_repeats
        for run_profile in (*profiles, probe["warm_up"]):
            assert sum(run_profile["groups"].values()) == pytest.approx(run_profile["cpu_s"])
    assert set(probe["per_day"]) == {*backfill_profile.ORDER, "total", "waited"}
    for figures in probe["per_day"].values():
        assert all(figures[f"{k}_noise_s"] >= 0 for k in ("business_day", "weekend_day", "per_run"))
    assert probe["wall_s"] > sum(r["wall_s"] for rs in probe["runs"].values() for r in rs)
    # The table prints each figure with its noise.
    printed = capsys.readouterr().out
    assert all(line in printed for line in backfill_profile.probe_lines(probe))
