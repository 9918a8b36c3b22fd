"""An operator's bad day: killed backfills, concurrent first runs, overlapping backfills.

Each attack ends with a plain `desk` command that must simply work, and books equal to a clean
run's. Real processes (the installed `desk` script), real SIGKILLs, SQLite and PostgreSQL.
DESK_KILL_TRIALS (default 5 per database) sets how many random kill points each database gets.
"""

import dataclasses
import itertools
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from desk_pipeline.adapters.warehouse import PositionRepository, schema_head
from desk_pipeline.cli import cli
from desk_pipeline.defs.runs import default_instance_yaml
from desk_pipeline_tests.e2e import driver
from desk_pipeline_tests.e2e.driver import DESK

# One worker runs them all (the clean books are computed once); the other runs the rest.
pytestmark = pytest.mark.slow

DAY1, DAY2 = "2026-03-02", "2026-03-03"
EOD_COLUMNS = [
    "book_id",
    "business_date",
    "as_of",
    "instrument_id",
    "quantity",
    "avg_price",
    "realized_pnl",
]
KILL_TRIALS = int(os.environ.get("DESK_KILL_TRIALS", "5"))
TIMEOUT = 600


def environment(home: Path, url: str) -> dict[str, str]:
    """A desk on its own DAGSTER_HOME (the repository's dagster.yaml, pools of one)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(default_instance_yaml())
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("DESK_")},
        "DAGSTER_HOME": str(home),
        "DESK_WAREHOUSE_URL": url,
        "DESK_START_DATE": "2026-03-01",
    }


def start(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen([DESK, *args], env=env, stdout=subprocess.DEVNULL, stderr=sink)


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return driver.run_desk(env, *args, check=False, timeout=TIMEOUT)


def backfill(env: dict[str, str], first: str, last: str) -> subprocess.CompletedProcess[str]:
    return run(env, "backfill", "--start", first, "--end", last)


def books(url: str, days: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The stored EOD positions and rankings of ``days``, without ids and computation stamps."""
    repository = PositionRepository(url)
    try:
        eod = repository.eod_positions(days)[EOD_COLUMNS]
        ranking = repository.rankings(days)[
            ["book_id", "business_date", "instrument_id", "rank", "quantity", "value", "eligible"]
        ]
    finally:
        repository.engine.dispose()
    keys = ["book_id", "business_date", "instrument_id"]
    return (
        eod.sort_values(keys, kind="stable").reset_index(drop=True),
        ranking.sort_values(keys, kind="stable").reset_index(drop=True),
    )


def assert_books_equal(url: str, clean: "Books", days: list[str]) -> None:
    eod, ranking = books(url, days)
    clean_eod, clean_ranking = (
        frame[frame["business_date"].isin(days)] for frame in (clean.eod, clean.ranking)
    )
    assert len(eod) > 0
    pd.testing.assert_frame_equal(eod, clean_eod.reset_index(drop=True), check_dtype=False)
    pd.testing.assert_frame_equal(ranking, clean_ranking.reset_index(drop=True), check_dtype=False)


def schema_versions(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [
                row[0] for row in conn.execute(sa.text("SELECT version_num FROM alembic_version"))
            ]
    finally:
        engine.dispose()


def runs_left_in_flight(home: Path) -> list[str]:
    """Runs still STARTED and runs still holding or waiting for pool slots."""
    with driver.open_instance(home) as instance:
        in_flight = instance.get_runs(
            dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING])
        )
        storage = instance.event_log_storage
        held = {
            slot.run_id
            for key in storage.get_concurrency_keys()
            for slot in storage.get_concurrency_info(key).claimed_slots
        }
        return [run.run_id for run in in_flight] + sorted(held | storage.get_concurrency_run_ids())


def backfill_runs_never_overlapped(home: Path) -> bool:
    """Whether the instance's backfill runs ran one at a time (each ended before the next)."""
    with driver.open_instance(home) as instance:
        records = instance.get_run_records(dg.RunsFilter(tags={"desk/trigger": "desk backfill"}))
    spans = sorted((r.start_time, r.end_time) for r in records)
    assert spans and all(start is not None and end is not None for start, end in spans), spans
    return all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans))


@dataclasses.dataclass(frozen=True)
class Books:
    """A clean run's books, and how many Dagster events its backfill logged."""

    eod: pd.DataFrame
    ranking: pd.DataFrame
    events: int


@pytest.fixture(scope="module")
def clean_books(tmp_path_factory) -> Books:
    """Books of DAY1..DAY2 from undisturbed backfills (one per day) on a new SQLite warehouse."""
    root = tmp_path_factory.mktemp("clean")
    url = f"sqlite:///{root}/warehouse.db"
    env = environment(root / "home", url)
    first = run(env, "--debug", "backfill", "--start", DAY1, "--end", DAY1)
    assert first.returncode == 0, first.stderr[-3000:]
    second = backfill(env, DAY2, DAY2)
    assert second.returncode == 0, second.stderr[-3000:]
    return Books(*books(url, [DAY1, DAY2]), events=dagster_events(first.stderr))


def dagster_events(log: str) -> int:
    """How many Dagster events a `desk --debug backfill` logged: the clock kills are set by."""
    return log.count(" - dagster - ")


def kill_at_event(env: dict[str, str], log: Path, event: int) -> tuple[bool, int]:
    """Start `desk backfill` of DAY1 and SIGKILL it once its log shows ``event`` events.

    Returns whether it was killed (it may finish first) and the events it had logged.
    """
    process = start(env, log, "--debug", "backfill", "--start", DAY1, "--end", DAY1)
    deadline = time.monotonic() + TIMEOUT
    while process.poll() is None and time.monotonic() < deadline:
        if dagster_events(log.read_text(errors="replace")) >= event:
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True, dagster_events(log.read_text(errors="replace"))
        time.sleep(0.05)
    process.wait(timeout=60)
    return False, dagster_events(log.read_text(errors="replace"))


def kill_trials(env: dict[str, str], url: str, home: Path, clean, tmp_path: Path) -> list[str]:
    """SIGKILL `desk backfill` at random moments of its run; a plain rerun must complete each.

    A moment is the n-th Dagster event (n uniform over a clean run's events, which --debug
    logs), so kills land in every step (ingestion, positions, EOD, valuation, ranking,
    checks), in the relay after the run (the last event), and before the first event.
    """
    rng = random.Random()
    seed = rng.randrange(2**32)
    rng.seed(seed)
    events_per_run = clean.events
    assert events_per_run > 10, "a clean run logged no Dagster events to set the kills by"
    notices = []
    kills = []
    for trial in range(KILL_TRIALS):
        event = rng.randint(0, events_per_run + 1)
        killed, logged = kill_at_event(env, tmp_path / f"killed-{trial}.log", event)
        kills.append(logged if killed else "finished first")
        context = f"seed {seed}, trial {trial}: killed={killed} at event {logged}"
        rerun = backfill(env, DAY1, DAY1)
        assert rerun.returncode == 0, f"{context}: {rerun.stderr[-3000:]}"
        assert "Traceback" not in rerun.stderr, context
        assert_books_equal(url, clean, [DAY1])
        assert runs_left_in_flight(home) == [], context
        assert schema_versions(url) == [schema_head()], context
        notices += [line for line in rerun.stderr.splitlines() if line.startswith("desk:")]
    # The figures of the run, for whoever reads the log (-s): where each kill landed, and what
    # the reruns told the operator.
    print(f"\n{url.partition(':')[0]}: seed {seed}, killed at events {kills}; reruns said:")
    print("\n".join(sorted(set(notices))) or "(nothing)")
    return notices


def test_a_backfill_killed_at_random_moments_is_completed_by_a_plain_rerun_on_sqlite(
    tmp_path, clean_books
):
    url = f"sqlite:///{tmp_path}/warehouse.db"
    home = tmp_path / "home"
    notices = kill_trials(environment(home, url), url, home, clean_books, tmp_path)
    # Every killed run was failed and its slots freed by the rerun that found it, with a line.
    assert all("repaired run" in line or "waiting" in line for line in notices), notices


@pytest.mark.postgres
def test_a_backfill_killed_at_random_moments_is_completed_by_a_plain_rerun_on_postgresql(
    tmp_path, pg_url, clean_books
):
    home = tmp_path / "home"
    notices = kill_trials(environment(home, pg_url), pg_url, home, clean_books, tmp_path)
    assert all("repaired run" in line or "waiting" in line for line in notices), notices


def concurrent_first_runs(env: dict[str, str], url: str, tmp_path: Path, clean) -> None:
    """Three backfills at once on a new warehouse and instance: two overlap, one does not."""
    home = Path(env["DAGSTER_HOME"])
    ranges = [(DAY1, DAY1), (DAY1, DAY1), (DAY2, DAY2)]
    logs = [tmp_path / f"first-run-{i}.log" for i in range(len(ranges))]
    processes = [
        start(env, log, "backfill", "--start", first, "--end", last)
        for log, (first, last) in zip(logs, ranges, strict=True)
    ]
    codes = [process.wait(timeout=TIMEOUT) for process in processes]
    errors = [log.read_text() for log in logs]
    assert codes == [0, 0, 0], "\n".join(e[-2000:] for e in errors)
    assert not any("Traceback" in e for e in errors)
    # One at a time (a backfill restates other days too); a waiter said whom it waited for.
    assert backfill_runs_never_overlapped(home)
    waits = [e for e in errors if "waiting for it to finish" in e]
    assert waits, errors
    assert all(" is running (run " in e or "first run is starting" in e for e in waits), waits
    assert schema_versions(url) == [schema_head()]
    status = run(env, "status", "--json")
    assert status.returncode == 0, status.stderr[-2000:]
    assert_books_equal(url, clean, [DAY1, DAY2])


def test_concurrent_first_runs_on_a_new_sqlite_warehouse_all_succeed(tmp_path, clean_books):
    url = f"sqlite:///{tmp_path}/warehouse.db"
    concurrent_first_runs(environment(tmp_path / "home", url), url, tmp_path, clean_books)


@pytest.mark.postgres
def test_concurrent_first_runs_on_a_new_postgresql_warehouse_all_succeed(
    tmp_path, pg_url, clean_books
):
    concurrent_first_runs(environment(tmp_path / "home", pg_url), pg_url, tmp_path, clean_books)


@pytest.mark.parametrize("repetition", range(2))
def test_concurrent_migrations_of_a_new_warehouse_leave_one_schema_version(
    tmp_path, warehouse_url, repetition
):
    env = environment(tmp_path / "home", warehouse_url)
    processes = [start(env, tmp_path / f"migrate-{i}.log", "migrate") for i in range(3)]
    codes = [process.wait(timeout=TIMEOUT) for process in processes]
    errors = [(tmp_path / f"migrate-{i}.log").read_text() for i in range(3)]
    assert codes == [0] * 3, errors
    assert schema_versions(warehouse_url) == [schema_head()]
    again = run(env, "migrate", "--json")
    assert again.returncode == 0 and '"applied": []' in again.stdout, again.stderr


# Nothing listens here: connections are refused at once.
CLOSED_PORT = 9
MISTYPED = {
    "empty landing folder": ("DESK_TRADE_SOURCE", "landing:", "no folder after 'landing:'"),
    "missing landing folder": (
        "DESK_TRADE_SOURCE",
        "landing:/nonexistent",
        "the landing folder does not exist",
    ),
    "a file as landing folder": ("DESK_TRADE_SOURCE", "landing:/etc/passwd", "not a folder"),
    "a system folder": ("DESK_TRADE_SOURCE", "landing:/proc", "is a system folder"),
    "a relative landing folder": ("DESK_TRADE_SOURCE", "landing:../..", "absolute path"),
    "sql source without a URL": ("DESK_TRADE_SOURCE", "sql:not-a-url", "not a database URL"),
    "unknown source kind": ("DESK_TRADE_SOURCE", "ftp:x", "'ftp' is not a trade source"),
    "garbage warehouse URL": ("DESK_WAREHOUSE_URL", "garbage", "not a database URL"),
    "closed PostgreSQL port": (
        "DESK_WAREHOUSE_URL",
        f"postgresql+psycopg://desk:secret@127.0.0.1:{CLOSED_PORT}/desk",
        "the warehouse is not reachable",
    ),
    "SQLite URL of a file that is no database": (
        "DESK_WAREHOUSE_URL",
        "sqlite:///{tmp}/notes.txt",
        "is not a SQLite database",
    ),
    "unknown time zone": ("DESK_TIMEZONE", "Mars/Olympus", "not a time zone"),
    "start date not a date": ("DESK_START_DATE", "last monday", "not a date"),
    "freshness not a number": ("DESK_FRESHNESS_MINUTES", "ten", "not a whole number"),
}


def test_each_mistyped_setting_is_one_line_naming_it_exit_code_2_and_the_same_in_doctor(
    tmp_path, monkeypatch
):
    """Every case at once (one `desk backfill` each, in parallel: they only start and stop)."""
    (tmp_path / "notes.txt").write_text("not a database, just notes\n" * 100)
    base = environment(tmp_path / "home", f"sqlite:///{tmp_path}/warehouse.db")
    envs = {
        case: {**base, variable: value.format(tmp=tmp_path)}
        for case, (variable, value, _) in MISTYPED.items()
    }
    started = {
        case: subprocess.Popen(
            [DESK, "backfill", "--start", DAY1, "--end", DAY1],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for case, env in envs.items()
    }
    for case, process in started.items():
        variable, _, problem = MISTYPED[case]
        _, stderr = process.communicate(timeout=TIMEOUT)
        assert process.returncode == 2, (case, stderr)
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in stderr, (case, stderr)
        assert lines[0].startswith(f"desk: {variable}=") and problem in lines[0], lines[0]
        assert "; " in lines[0].partition(": ")[2], lines[0]  # what is wrong; what to do
        assert "secret" not in lines[0]
        # `desk doctor` (in-process: it reads the environment when it runs) shows that line.
        with monkeypatch.context() as patch:
            for name, setting in envs[case].items():
                patch.setenv(name, setting)
            doctor = CliRunner().invoke(cli, ["doctor", "--json"])
        details = [check["detail"] for check in json.loads(doctor.stdout)["checks"]]
        assert lines[0].removeprefix("desk: ") in details, (case, details)
