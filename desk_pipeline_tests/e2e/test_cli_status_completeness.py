"""`desk status` shows the days whose EOD lacks its valuation or ranking, and the fix that works.

The installed `desk` over the simulator desk, backfilled for three days; then what a backfill
stopped between its steps leaves: a book's ranking of one day and another's valuation of
another never stored, and a third book's EOD replaced (a late trade, the EOD step alone) beside
the valuation and ranking of the snapshot it replaced. Text and JSON name exactly those, and
the command they name completes them.
"""

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from desk_pipeline.adapters.warehouse import PositionRepository
from desk_pipeline.defs.end_of_day import store_eods
from desk_pipeline_tests.builders import (
    INCOMPLETE_DAYS,
    RESTATED,
    UNRANKED,
    UNVALUED,
    leave_incomplete,
)
from desk_pipeline_tests.e2e.driver import desk_env, run_desk

DAYS = INCOMPLETE_DAYS


@pytest.fixture
def backfilled(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    env = desk_env(
        home, DESK_WAREHOUSE_URL=f"sqlite:///{tmp_path}/warehouse.db", DESK_START_DATE="2026-03-01"
    )
    run_desk(env, "backfill", "--start", DAYS[0], "--end", DAYS[-1])
    return env


def left_incomplete(url: str) -> None:
    """leave_incomplete, RESTATED's EOD of day 3 restated as the eod_positions step stores it."""
    repo = PositionRepository(url)
    leave_incomplete(repo)
    written = store_eods(repo, DAYS[2:], "UTC", pd.Timestamp.now(tz="UTC")).writes
    assert [(w.book_id, w.business_date) for w in written] == [(RESTATED, DAYS[2])]
    repo.engine.dispose()


def test_status_names_the_incomplete_days_and_the_backfill_that_completes_them(backfilled):
    env = backfilled
    before = run_desk(env, "status")
    assert before.stdout.splitlines()[-1] == "every stored EOD has its valuation and ranking"

    left_incomplete(env["DESK_WAREHOUSE_URL"])

    document = json.loads(run_desk(env, "status", "--json").stdout)
    assert [
        (i["business_date"], i["book_id"], i["valuation"], i["ranking"])
        for i in document["incomplete_eods"]
    ] == [
        (DAYS[0], UNVALUED, "missing", "current"),
        (DAYS[1], UNRANKED, "current", "missing"),
        (DAYS[2], RESTATED, "older_snapshot", "older_snapshot"),
    ]
    assert document["incomplete_days"] == DAYS
    assert document["incomplete_fix"] == f"desk backfill --start {DAYS[0]} --end {DAYS[-1]}"
    assert {
        b["book_id"]: b["incomplete_days"] for b in document["books"] if b["incomplete_days"]
    } == {
        UNVALUED: [DAYS[0]],
        UNRANKED: [DAYS[1]],
        RESTATED: [DAYS[2]],
    }

    text = run_desk(env, "status").stdout.splitlines()
    assert text[-5:] == [
        "incomplete: 3 day(s) whose EOD's valuation or ranking is missing or older than the EOD",
        f"  {DAYS[0]} valuation missing: {UNVALUED}",
        f"  {DAYS[1]} ranking missing: {UNRANKED}",
        f"  {DAYS[2]} valuation and ranking of an older snapshot: {RESTATED}",
        f"`desk backfill --start {DAYS[0]} --end {DAYS[-1]}` completes them",
    ]

    fix = re.fullmatch(r"`desk (.+)` completes them", text[-1])
    assert fix is not None
    run_desk(env, *fix.group(1).split())

    after = json.loads(run_desk(env, "status", "--json").stdout)
    assert (after["incomplete_days"], after["incomplete_eods"], after["incomplete_fix"]) == (
        [],
        [],
        None,
    )
    assert run_desk(env, "status").stdout.splitlines()[-1] == (
        "every stored EOD has its valuation and ranking"
    )
