"""The backfill profile charges each py-spy sample of the main thread to one group of desk code,
and splits a run's seconds into a business day, a weekend day and a per-run remainder."""

import pandas as pd
import pytest

from benchmarks import backfill_profile as bp

RUN = (
    "main (benchmarks/backfill_run.py:90)",
    "run_range (desk_pipeline/commands/backfill.py:50)",
    "execute_in_process (dagster/_core/definitions/job_definition.py:700)",
)


def _stack(*frames: str) -> list[str]:
    return [*RUN, *frames]


@pytest.mark.parametrize(
    ("frames", "group"),
    [
        # An asset check re-reads and rolls trades: charged to the check, not to the roll.
        (
            _stack(
                "check_eods_match_recomputation (desk_pipeline/defs/positions/checks.py:40)",
                "store_eods (desk_pipeline/defs/end_of_day.py:90)",
                "roll_positions (desk_pipeline/domain/positions/engine.py:10)",
            ),
            "asset checks",
        ),
        (
            _stack(
                "close_days (desk_pipeline/defs/end_of_day.py:200)",
                "restate_stale_days (desk_pipeline/defs/end_of_day.py:170)",
                "store_eods (desk_pipeline/defs/end_of_day.py:80)",
                "DailyBookPositionStore.keep_last_eod (desk_pipeline/adapters/warehouse/x.py:8)",
                "_bulk_insert (desk_pipeline/adapters/warehouse/bulk.py:3)",
            ),
            "EOD keep-last write",
        ),
        (
            _stack(
                "close_days (desk_pipeline/defs/end_of_day.py:200)",
                "restate_stale_days (desk_pipeline/defs/end_of_day.py:170)",
                "store_eods (desk_pipeline/defs/end_of_day.py:80)",
                "roll_positions (desk_pipeline/domain/positions/engine.py:10)",
            ),
            "EOD trades read + roll",
        ),
        (
            _stack(
                "close_days (desk_pipeline/defs/end_of_day.py:200)",
                "ingest_window (desk_pipeline/defs/ingestion.py:20)",
            ),
            "ingest (source -> trade tables)",
        ),
        (
            _stack("collateral_ranking (desk_pipeline/defs/collateral/assets.py:40)"),
            "ranking",
        ),
        # run_range itself is desk code: a stack with no desk frame below it is Dagster's.
        (
            _stack("SqliteEventLogStorage._connect (dagster/_core/storage/sqlite.py:10)"),
            bp.DAGSTER,
        ),
        (
            [
                "main (benchmarks/backfill_run.py:80)",
                "<module> (desk_pipeline/domain/positions/engine.py:1)",
            ],
            bp.STARTUP,
        ),
    ],
)
def test_a_stack_is_charged_to_the_first_group_matching_below_run_range(frames, group):
    assert bp.group_of(frames) == group


def test_the_profile_shares_the_cpu_time_among_main_thread_samples_only():
    raw = [
        ";".join(_stack("ingest_window (desk_pipeline/defs/ingestion.py:20)")) + " 30\n",
        ";".join(_stack("SqliteEventLogStorage._connect (dagster/_core/x.py:1)")) + " 10\n",
        "main (benchmarks/backfill_run.py:80);<module> (dagster/__init__.py:1) 10\n",
        "Thread._bootstrap (threading.py:1002);Thread.run (threading.py:982) 500\n",
    ]
    profile = bp.profile_of(raw, cpu_s=5.0)
    assert profile["samples"] == 50
    groups = profile["groups"]
    assert list(groups) == list(bp.ORDER)
    assert groups["ingest (source -> trade tables)"] == pytest.approx(3.0)
    assert groups[bp.DAGSTER] == pytest.approx(1.0)
    assert groups[bp.STARTUP] == pytest.approx(1.0)
    assert sum(groups.values()) == pytest.approx(5.0)
    # Where to look: the innermost frame of the group's own package, without its line.
    assert profile["top"][bp.DAGSTER] == [
        ["SqliteEventLogStorage._connect (dagster/_core/x.py)", pytest.approx(1.0)]
    ]


def test_a_profile_without_main_thread_samples_is_an_error():
    with pytest.raises(ValueError, match="no sample"):
        bp.profile_of(["Thread._bootstrap (threading.py:1002) 5\n"], cpu_s=1.0)


def test_the_probe_ranges_are_a_week_a_weekend_later_and_a_week_later_before_today():
    ranges = bp.probe_ranges(pd.Timestamp("2026-11-30 22:00"))  # a Monday
    assert ranges == {
        "mon_fri": ("2026-11-16", "2026-11-20"),
        "mon_sun": ("2026-11-16", "2026-11-22"),
        "mon_next_fri": ("2026-11-16", "2026-11-27"),
    }
    assert bp.probe_ranges(pd.Timestamp("2026-12-06")) == ranges  # the Sunday of that week


def _probe_run(business_days: int, weekend_days: int, one_off: float = 0.0) -> dict:
    """A run whose valuation costs 10 s per run, 2 s per business day and 0.5 s per weekend
    day, plus ``one_off`` seconds."""
    total = 10.0 + 2.0 * business_days + 0.5 * weekend_days + one_off
    return {
        "groups": {group: total if group == "valuation" else 0.0 for group in bp.ORDER},
        "cpu_s": total,
        "waited_s": total / 2,
        "load_1m_at_start": 1.0,
    }


def test_per_day_recovers_linear_costs_from_the_median_runs_whatever_one_run_spent_once():
    # A numba compile (5 s) in one run of each of two ranges: a difference of single runs would
    # price a weekend day at -2 s.
    runs = {
        "mon_fri": [_probe_run(5, 0, one_off=5.0), _probe_run(5, 0), _probe_run(5, 0)],
        "mon_sun": [_probe_run(5, 2), _probe_run(5, 2), _probe_run(5, 2)],
        "mon_next_fri": [_probe_run(10, 2), _probe_run(10, 2, one_off=5.0), _probe_run(10, 2)],
    }
    figures = bp.per_day(runs)
    for group in ("valuation", "total"):
        f = figures[group]
        assert (f["business_day_s"], f["weekend_day_s"], f["per_run_s"]) == pytest.approx(
            (2.0, 0.5, 10.0)
        )
        # The one-offs are in the spread of their ranges: noise = spreads over the days apart.
        assert f["business_day_noise_s"] == pytest.approx(5.0 / 5)
        assert f["weekend_day_noise_s"] == pytest.approx(5.0 / 2)
        assert f["per_run_noise_s"] == pytest.approx(5.0 + 5.0)
    assert figures["waited"]["weekend_day_s"] == pytest.approx(0.25)
    assert figures["ranking"]["business_day_s"] == figures["ranking"]["weekend_day_noise_s"] == 0


def test_the_probe_runs_every_range_once_per_round_in_a_rotated_order():
    assert bp.probe_order(3) == [
        *("mon_fri", "mon_sun", "mon_next_fri"),
        *("mon_sun", "mon_next_fri", "mon_fri"),
        *("mon_next_fri", "mon_fri", "mon_sun"),
    ]


@pytest.mark.parametrize(
    ("value", "noise", "noise_only"),
    [(0.5, 0.1, False), (0.05, 0.1, True), (0.1, 0.1, True), (-0.5, 0.1, True), (-0.01, 0, True)],
)
def test_a_figure_within_its_noise_or_negative_is_noise(value, noise, noise_only):
    assert bp.is_noise(value, noise) is noise_only


def test_the_probe_text_gives_each_figure_its_noise_and_marks_negative_figures():
    runs = {
        "mon_fri": [_probe_run(5, 0), _probe_run(5, 0, one_off=0.4)],
        "mon_sun": [_probe_run(5, 0), _probe_run(5, 0)],  # a weekend day costing nothing
        "mon_next_fri": [_probe_run(10, 2), _probe_run(10, 2)],
    }
    probe = {
        "ranges": bp.probe_ranges(pd.Timestamp("2026-11-30")),
        "repeats": 2,
        "warm_up": {"range": bp.WARM_UP_RANGE, "cpu_s": 21.0},
        "runs": runs,
        "wall_s": 300.0,
        "load_1m": [1.0, 2.5],
        "per_day": bp.per_day(runs),
    }
    lines = bp.probe_lines(probe)
    assert "5.0 min, load 1m 1.0-2.5" in lines[0]
    assert "warm-up: 21.0 CPU s, against 20.0 for the median run" in lines[1]
    assert "20.0 (1.0), 20.4 (1.0)" in lines[2]
    (valuation,) = [line for line in lines if line.startswith("  valuation")]
    # Business day 2.2 (from Mon..next Fri 31 - Mon..Sun 20, over 5); weekend day
    # (20 - 20.2) / 2 = -0.1, within its noise 0.2: marked.
    assert valuation.split()[1:] == ["2.20", "±0.00", "-0.10", "±0.20?", "9.20", "±0.40"]
    assert lines[-1] == "  ? within its noise or negative: noise, not a cost"
