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


def test_per_day_recovers_linear_costs_from_the_three_probe_runs():
    business, weekend, per_run = 2.0, 0.5, 10.0

    def run(business_days: int, weekend_days: int) -> dict:
        total = per_run + business * business_days + weekend * weekend_days
        return {
            "groups": {group: total if group == "valuation" else 0.0 for group in bp.ORDER},
            "waited_s": total / 2,
        }

    figures = bp.per_day({"mon_fri": run(5, 0), "mon_sun": run(5, 2), "mon_next_fri": run(10, 2)})
    for group in ("valuation", "total"):
        assert figures[group] == pytest.approx(
            {"business_day_s": business, "weekend_day_s": weekend, "per_run_s": per_run}
        )
    assert figures["waited"]["weekend_day_s"] == pytest.approx(weekend / 2)
    assert figures["ranking"] == {"business_day_s": 0, "weekend_day_s": 0, "per_run_s": 0}
