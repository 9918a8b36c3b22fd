"""SIGTERM stops the desk's commands that run Dagster in-process, however they were started.

Each command is started as a background job of a shell that ran Dagster starts it, with SIGINT
and SIGTERM ignored (driver.desk_running), and stopped with SIGTERM in the middle of its runs:
it exits 143 after one line saying what the stop left, no run stays in flight, and what the line
says to do next completes the work as an uninterrupted command does.
"""

import contextlib
import json
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from desk_pipeline.adapters import tables as t
from desk_pipeline.defs import runs as desk_runs
from desk_pipeline_tests.builders import at, trade, write_landing_file, write_reference_files
from desk_pipeline_tests.e2e import driver
from desk_pipeline_tests.e2e.event_desk import last_line

# 40 days: a backfill runs them as two runs, 31 days and 9 (BACKFILL_CHUNK_DAYS).
DAYS = [d.strftime("%Y-%m-%d") for d in pd.date_range("2026-03-02", "2026-04-10")]
SECOND_RUN = DAYS[31]
BOOKS = ["REPO-1", "SECLEND-1"]
INSTRUMENTS = ["DE-BUND-7Y", "IT-BTP-2Y", "DE-EQ-DAX"]


def trades() -> list[dict]:
    """Each weekday, each book buys one instrument and sells part of another (average cost)."""
    rows = []
    for n, day in enumerate(d for d in DAYS if pd.Timestamp(d).dayofweek < 5):
        for b, book in enumerate(BOOKS):
            bought, sold = INSTRUMENTS[(n + b) % 3], INSTRUMENTS[(n + b + 1) % 3]
            rows += [
                trade(f"{book}-{day}-B", 1_000 * (n % 7 + 1), 1 + n / 100, book=book,
                      instrument=bought, at=at(day, "09:00")),
                trade(f"{book}-{day}-S", -300, 1 + n / 90, book=book, instrument=sold,
                      at=at(day, "15:30")),
            ]  # fmt: skip
    return rows


def landing(folder: Path) -> Path:
    """The desk's trades with instruments, daily marks and books beside them."""
    write_landing_file(folder, "trades.csv", trades())
    write_reference_files(
        folder,
        instruments=[
            "DE-BUND-7Y,Bund 2033,government_bond,sovereign,Germany,AAA,2033-02-15,EUR",
            "IT-BTP-2Y,BTP 2028,government_bond,sovereign,Italy,BBB,2028-01-01,EUR",
            "DE-EQ-DAX,Dax Co,equity_main_index,,Dax Co,,,EUR",
        ],
        prices=[
            f"{instrument},{day},{1 + i / 50 + n / 200:.4f}"
            for n, day in enumerate(DAYS)
            if pd.Timestamp(day).dayofweek < 5
            for i, instrument in enumerate(INSTRUMENTS)
        ],
        books=[f"{book},EUR,5" for book in BOOKS],
    )
    return folder


def desk(tmp_path: Path, name: str, folder: Path, **desk_vars: str) -> dict[str, str]:
    """A desk of its own (Dagster home, SQLite warehouse) over the landing ``folder``."""
    home = tmp_path / name
    home.mkdir()
    return driver.desk_env(
        home,
        DESK_WAREHOUSE_URL=f"sqlite:///{tmp_path}/{name}.db",
        DESK_TRADE_SOURCE=f"landing:{folder}",
        **desk_vars,
    )


@contextlib.contextmanager
def instance_of(env: dict[str, str]) -> Iterator[dg.DagsterInstance]:
    """``env``'s Dagster instance, opened as a desk command opens it (its dagster.yaml)."""
    with (
        mock.patch.dict(os.environ, {"DAGSTER_HOME": env["DAGSTER_HOME"]}),
        desk_runs.desk_instance() as instance,
    ):
        yield instance


def runs_of(env: dict[str, str]) -> list[dg.DagsterRun]:
    """The runs of ``env``'s Dagster instance (once no `desk` command runs on it)."""
    with instance_of(env) as instance:
        return list(instance.get_runs())


def slots_held(env: dict[str, str]) -> int:
    with instance_of(env) as instance:
        storage = instance.event_log_storage
        return sum(
            len(storage.get_concurrency_info(key).claimed_slots)
            for key in storage.get_concurrency_keys()
        )


def runs_begun(env: dict[str, str], **tags: str) -> bool:
    """Whether ``env``'s Dagster instance holds a run with ``tags``, read while `desk` runs.

    Read-only from Dagster's SQLite run storage (WAL, so the desk's writes never wait): opening
    the instance alongside would write to it, and the desk's writes then failed with "database
    is locked".
    """
    runs_db = Path(env["DAGSTER_HOME"]) / "history" / "runs.db"
    if not runs_db.exists():
        return False
    query = "SELECT count(*) FROM runs" + "".join(
        f" JOIN run_tags t{i} ON t{i}.run_id = runs.run_id AND t{i}.key = ? AND t{i}.value = ?"
        for i in range(len(tags))
    )
    with contextlib.closing(sqlite3.connect(f"file:{runs_db}?mode=ro", uri=True)) as db:
        try:
            return bool(db.execute(query, [v for kv in tags.items() for v in kv]).fetchone()[0])
        except sqlite3.OperationalError:  # its tables are not created yet
            return False


def stopped(env: dict[str, str], log: Path, args: tuple[str, ...], when) -> int:
    """Run ``desk ARGS`` as a background job; SIGTERM it once ``when()`` holds; its exit code."""
    with driver.desk_running(env, log, *args) as command:
        driver.wait_until(f"desk {args[0]} in its runs", 300, when)
        return driver.stop(command, f"desk {args[0]}")


def computed(table: sa.Table) -> sa.Select:
    """``table``'s rows of the stored EODs, book and day first, without ids and clock times."""
    key = [table.c.book_id, table.c.business_date]
    rest = [c for c in table.c if c not in key and c.name not in VOLATILE]
    stored = (t.eod_snapshots.c.snapshot_id == table.c.snapshot_id) & (
        t.eod_snapshots.c.book_id == table.c.book_id
    )
    query = sa.select(*key, *rest)
    return query if table is t.eod_snapshots else query.join(t.eod_snapshots, stored)


# Ids and times that differ from one run to the next for the same result.
VOLATILE = {"snapshot_id", "computed_at_us"}
RESULTS = {
    table.name: computed(table)
    for table in (t.eod_snapshots, t.eod_positions, t.eod_valuations, t.collateral_rankings)
} | {"events": sa.select(t.outbox.c.book_id, t.outbox.c.business_date, t.outbox.c.event_type)}


def results(env: dict[str, str]) -> dict[str, list[tuple]]:
    """Every table's rows as sorted tuples; rankings and valuations only of a stored EOD."""
    engine = sa.create_engine(env["DESK_WAREHOUSE_URL"])
    try:
        with engine.connect() as conn:
            return {
                name: sorted(tuple(row) for row in conn.execute(query))
                for name, query in RESULTS.items()
            }
    finally:
        engine.dispose()


def of_days(rows: dict[str, list[tuple]], days: list[str]) -> dict[str, list[tuple]]:
    return {name: [r for r in table if str(r[1]) in days] for name, table in rows.items()}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, dict[str, list[tuple]]]:
    """The landing folder and what an uninterrupted `desk backfill` of DAYS stores from it."""
    root = tmp_path_factory.mktemp("uninterrupted")
    folder = landing(root / "landing")
    env = desk(root, "desk", folder, DESK_START_DATE=DAYS[0])
    driver.run_desk(env, "backfill", "--start", DAYS[0], "--end", DAYS[-1])
    return folder, results(env)


def test_sigterm_mid_backfill_exits_143_leaves_complete_days_and_the_named_rest_completes_it(
    uninterrupted, tmp_path
):
    folder, expected = uninterrupted
    env = desk(tmp_path, "desk", folder, DESK_START_DATE=DAYS[0])
    log = tmp_path / "backfill.log"

    # Stopped once its second run (the last 9 days) has begun.
    code = stopped(
        env,
        log,
        ("backfill", "--start", DAYS[0], "--end", DAYS[-1]),
        lambda: runs_begun(env, **{"dagster/asset_partition_range_start": SECOND_RUN}),
    )

    line = last_line(log)
    assert code == 143, log.read_text()[-3000:]
    assert line == (
        f"desk: backfill stopped by SIGTERM; days {DAYS[0]}..{DAYS[30]} complete, days "
        f"{SECOND_RUN}..{DAYS[-1]} not: `desk backfill --start {SECOND_RUN} --end {DAYS[-1]}` "
        "completes them"
    )
    assert [ln for ln in log.read_text().splitlines() if ln.startswith("desk:")] == [line]
    # Consistent: no run left in flight or holding a pool slot; the days it calls complete are
    # exactly as an uninterrupted backfill stores them, and whatever else it stored is too.
    assert {run.status.value for run in runs_of(env)} == {"SUCCESS", "FAILURE"}
    assert not [run for run in runs_of(env) if run.status in desk_runs.IN_FLIGHT]
    assert slots_held(env) == 0
    left = results(env)
    assert of_days(left, DAYS[:31]) == of_days(expected, DAYS[:31])
    for name, rows in left.items():
        assert set(rows) <= set(expected[name]), name
    # What the stop left half done (EODs stored, their valuation or ranking not) is what
    # `desk status` lists once the command is gone, and it is within the days the line names.
    status = json.loads(driver.run_desk(env, "status", "--json").stdout)
    assert status["incomplete_days"] == half_done(left)
    assert set(status["incomplete_days"]) <= set(DAYS[31:])

    rest = re.search(r"`desk (backfill --start \S+ --end \S+)`", line)
    assert rest is not None
    driver.run_desk(env, *rest.group(1).split())

    assert results(env) == expected
    assert json.loads(driver.run_desk(env, "status", "--json").stdout)["incomplete_days"] == []


def half_done(stored: dict[str, list[tuple]]) -> list[str]:
    """Days with an EOD lacking its valuation (it has rows) or its ranking (it holds some)."""
    valued = {r[:2] for r in stored["eod_valuations"]}
    ranked = {r[:2] for r in stored["collateral_rankings"]}
    with_rows = {r[:2] for r in stored["eod_positions"]}
    # eod_snapshots rows: book_id, business_date, as_of_us, position_count, content_digest.
    return sorted(
        {
            day
            for book, day, _, open_positions, _ in stored["eod_snapshots"]
            if ((book, day) in with_rows and (book, day) not in valued)
            or (open_positions > 0 and (book, day) not in ranked)
        }
    )


def test_sigterm_mid_tick_exits_143_and_the_next_tick_snapshots_the_latest_window(tmp_path):
    # Any window closed since yesterday will do. The trades only make the run last seconds: an
    # empty desk's tick ended before the probe saw it begin, and exited 0 (CI, 2026-12-02).
    yesterday = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    landing_folder = tmp_path / "landing"
    write_landing_file(
        landing_folder,
        "trades.csv",
        [
            trade(f"T{n}", 1 + n % 9, 100, book=f"B{n % 5}", instrument=f"I{n % 200}",
                  at=at(yesterday, "00:00") + pd.Timedelta(seconds=n % 80_000))
            for n in range(100_000)
        ],
    )  # fmt: skip
    env = desk(tmp_path, "desk", landing_folder, DESK_START_DATE=yesterday)
    log = tmp_path / "tick.log"

    code = stopped(env, log, ("tick",), lambda: runs_begun(env))

    assert (code, last_line(log)) == (
        143,
        "desk: tick stopped by SIGTERM; the window's snapshot is stored whole or not at all: "
        "`desk tick` again snapshots the latest window",
    ), log.read_text()[-3000:]
    assert [run.status.value for run in runs_of(env)] == ["FAILURE"]
    assert slots_held(env) == 0

    again = json.loads(driver.run_desk(env, "tick", "--json").stdout)
    assert sorted(run.status.value for run in runs_of(env)) == ["FAILURE", "SUCCESS"]
    start = pd.to_datetime(again["window"], format="%Y-%m-%d-%H:%M").tz_localize("UTC")
    end = start + pd.Timedelta(minutes=10)
    assert pd.Timestamp(again["as_of"]) == end  # the window is named by its start
    engine = sa.create_engine(env["DESK_WAREHOUSE_URL"])
    with engine.connect() as conn:
        stored = conn.execute(sa.select(t.intraday_windows.c.window_end_us)).scalars().all()
    engine.dispose()
    assert end.value // 1000 in stored
